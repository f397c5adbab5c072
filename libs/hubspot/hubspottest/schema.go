package hubspottest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// propertyDef is one property of one object type in one portal.
type propertyDef struct {
	Name              string
	Label             string
	Type              string // bool, date, datetime, enumeration, number, phone_number, string
	FieldType         string
	GroupName         string
	Description       string
	Options           []option
	DisplayOrder      int
	HasUniqueValue    bool
	Hidden            bool
	FormField         bool
	Calculated        bool
	HubspotDefined    bool
	ReadOnlyValue     bool
	ReadOnlyDef       bool
	NumberDisplayHint string
	CreatedAt         time.Time
	UpdatedAt         time.Time
	Archived          bool
	ArchivedAt        time.Time
	// ownerRef marks hubspot_owner_id: values must be owner ids.
	ownerRef bool
	// maxLen bounds string values (0: no bound).
	maxLen int
}

type option struct {
	Label        string `json:"label"`
	Value        string `json:"value"`
	DisplayOrder int    `json:"displayOrder"`
	Hidden       bool   `json:"hidden"`
	Description  string `json:"description,omitempty"`
}

type propertyGroup struct {
	Name         string `json:"name"`
	Label        string `json:"label"`
	DisplayOrder int    `json:"displayOrder"`
	Archived     bool   `json:"archived"`
}

// propertySet holds one object type's properties and groups.
type propertySet struct {
	defs   map[string]*propertyDef
	groups map[string]*propertyGroup
}

func (ps *propertySet) get(name string) (*propertyDef, bool) {
	d, ok := ps.defs[name]
	if !ok || d.Archived {
		return nil, false
	}
	return d, true
}

// sortedDefs returns the properties ordered by name.
func (ps *propertySet) sortedDefs(archived bool) []*propertyDef {
	out := make([]*propertyDef, 0, len(ps.defs))
	for _, d := range ps.defs {
		if d.Archived == archived {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b *propertyDef) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func opts(values ...string) []option {
	out := make([]option, len(values))
	for i, v := range values {
		label := strings.ReplaceAll(strings.ToLower(v), "_", " ")
		if label != "" {
			label = strings.ToUpper(label[:1]) + label[1:]
		}
		out[i] = option{Label: label, Value: v, DisplayOrder: i}
	}
	return out
}

// builtinProperties returns HubSpot's default properties the sandbox knows
// for one object type (a representative subset of HubSpot's, with the same
// names, types and read-only flags).
func builtinProperties(k *objectKind, now time.Time) *propertySet {
	str := func(name, label string) *propertyDef {
		return &propertyDef{Name: name, Label: label, Type: "string", FieldType: "text"}
	}
	num := func(name, label string) *propertyDef {
		return &propertyDef{Name: name, Label: label, Type: "number", FieldType: "number"}
	}
	enum := func(name, label string, o []option) *propertyDef {
		return &propertyDef{Name: name, Label: label, Type: "enumeration", FieldType: "select", Options: o}
	}
	dt := func(name, label string) *propertyDef {
		return &propertyDef{Name: name, Label: label, Type: "datetime", FieldType: "date"}
	}
	ro := func(d *propertyDef) *propertyDef { d.ReadOnlyValue = true; return d }
	calc := func(d *propertyDef) *propertyDef { d.ReadOnlyValue = true; d.Calculated = true; return d }
	owner := func() *propertyDef {
		d := enum("hubspot_owner_id", "Owner", nil)
		d.ownerRef = true
		return d
	}
	lifecycle := enum("lifecyclestage", "Lifecycle Stage", []option{
		{Label: "Subscriber", Value: "subscriber"}, {Label: "Lead", Value: "lead", DisplayOrder: 1},
		{Label: "Marketing Qualified Lead", Value: "marketingqualifiedlead", DisplayOrder: 2},
		{Label: "Sales Qualified Lead", Value: "salesqualifiedlead", DisplayOrder: 3},
		{Label: "Opportunity", Value: "opportunity", DisplayOrder: 4}, {Label: "Customer", Value: "customer", DisplayOrder: 5},
		{Label: "Evangelist", Value: "evangelist", DisplayOrder: 6}, {Label: "Other", Value: "other", DisplayOrder: 7},
	})

	var defs []*propertyDef
	switch k.name {
	case Companies:
		defs = []*propertyDef{
			str("name", "Company name"), str("domain", "Company Domain Name"), str("website", "Website URL"),
			str("hs_additional_domains", "Additional Domains"),
			enum("industry", "Industry", opts(industries...)), owner(),
			str("phone", "Phone Number"), str("city", "City"), str("state", "State/Region"), str("country", "Country/Region"),
			num("numberofemployees", "Number of Employees"), num("annualrevenue", "Annual Revenue"),
			{Name: "description", Label: "Description", Type: "string", FieldType: "textarea"}, lifecycle,
			ro(dt("createdate", "Create Date")), ro(dt("hs_lastmodifieddate", "Last Modified Date")),
			ro(num("hs_object_id", "Record ID")),
			calc(num("num_associated_contacts", "Number of Associated Contacts")),
			calc(num("num_associated_deals", "Number of Associated Deals")),
			ro(str("hs_merged_object_ids", "Merged record IDs")),
		}
	case Contacts:
		defs = []*propertyDef{
			str("email", "Email"), str("firstname", "First Name"), str("lastname", "Last Name"),
			str("phone", "Phone Number"), str("company", "Company Name"), str("jobtitle", "Job Title"),
			str("website", "Website URL"), str("city", "City"), str("country", "Country/Region"), lifecycle, owner(),
			num("associatedcompanyid", "Primary Associated Company ID"),
			ro(str("hs_additional_emails", "Additional email addresses")),
			calc(str("hs_email_domain", "Email Domain")),
			ro(dt("createdate", "Create Date")), ro(dt("lastmodifieddate", "Last Modified Date")),
			ro(num("hs_object_id", "Record ID")),
			calc(num("num_associated_deals", "Number of Associated Deals")),
			ro(str("hs_merged_object_ids", "Merged record IDs")),
		}
	case Deals:
		defs = []*propertyDef{
			str("dealname", "Deal Name"),
			enum("dealstage", "Deal Stage", []option{
				{Label: "Appointment Scheduled", Value: "appointmentscheduled"},
				{Label: "Qualified To Buy", Value: "qualifiedtobuy", DisplayOrder: 1},
				{Label: "Presentation Scheduled", Value: "presentationscheduled", DisplayOrder: 2},
				{Label: "Decision Maker Bought-In", Value: "decisionmakerboughtin", DisplayOrder: 3},
				{Label: "Contract Sent", Value: "contractsent", DisplayOrder: 4},
				{Label: "Closed Won", Value: "closedwon", DisplayOrder: 5},
				{Label: "Closed Lost", Value: "closedlost", DisplayOrder: 6},
			}),
			enum("pipeline", "Pipeline", []option{{Label: "Sales Pipeline", Value: "default"}}),
			num("amount", "Amount"), dt("closedate", "Close Date"),
			enum("dealtype", "Deal Type", []option{{Label: "New Business", Value: "newbusiness"}, {Label: "Existing Business", Value: "existingbusiness", DisplayOrder: 1}}),
			{Name: "description", Label: "Deal Description", Type: "string", FieldType: "textarea"}, owner(),
			calc(&propertyDef{Name: "hs_is_closed", Label: "Is Deal Closed?", Type: "bool", FieldType: "booleancheckbox", Options: boolOptions()}),
			ro(dt("createdate", "Create Date")), ro(dt("hs_lastmodifieddate", "Last Modified Date")),
			ro(num("hs_object_id", "Record ID")),
			calc(num("num_associated_contacts", "Number of Associated Contacts")),
			ro(str("hs_merged_object_ids", "Merged record IDs")),
		}
	case Tasks:
		defs = []*propertyDef{
			dt("hs_timestamp", "Due date"), str("hs_task_subject", "Task Title"),
			{Name: "hs_task_body", Label: "Task notes", Type: "string", FieldType: "html"},
			enum("hs_task_status", "Task Status", opts("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")),
			enum("hs_task_priority", "Priority", opts("NONE", "LOW", "MEDIUM", "HIGH")),
			enum("hs_task_type", "Task Type", opts("EMAIL", "CALL", "TODO", "LINKED_IN")),
			str("hs_task_reminders", "Reminders"), owner(),
			ro(dt("hs_createdate", "Create date")), ro(dt("hs_lastmodifieddate", "Last Modified Date")),
			ro(num("hs_object_id", "Record ID")),
		}
	case Notes:
		body := &propertyDef{Name: "hs_note_body", Label: "Note body", Type: "string", FieldType: "html", maxLen: 65536}
		defs = []*propertyDef{
			dt("hs_timestamp", "Activity date"), body, str("hs_attachment_ids", "Attached file IDs"), owner(),
			ro(dt("hs_createdate", "Create date")), ro(dt("hs_lastmodifieddate", "Last Modified Date")),
			ro(num("hs_object_id", "Record ID")),
		}
	}
	ps := &propertySet{defs: map[string]*propertyDef{}, groups: map[string]*propertyGroup{}}
	ps.groups[k.defaultGroup] = &propertyGroup{Name: k.defaultGroup, Label: k.label + " information"}
	for i, d := range defs {
		d.GroupName = k.defaultGroup
		d.HubspotDefined = true
		d.ReadOnlyDef = true
		d.DisplayOrder = i
		d.FormField = !d.ReadOnlyValue
		d.CreatedAt, d.UpdatedAt = now, now
		ps.defs[d.Name] = d
	}
	return ps
}

func boolOptions() []option {
	return []option{{Label: "True", Value: "true"}, {Label: "False", Value: "false", DisplayOrder: 1}}
}

var industries = []string{
	"ACCOUNTING", "AIRLINES_AVIATION", "APPAREL_FASHION", "AUTOMOTIVE", "BANKING", "BIOTECHNOLOGY",
	"COMPUTER_HARDWARE", "COMPUTER_SOFTWARE", "CONSTRUCTION", "CONSUMER_GOODS", "EDUCATION_MANAGEMENT",
	"ENTERTAINMENT", "FINANCIAL_SERVICES", "FOOD_BEVERAGES", "HOSPITAL_HEALTH_CARE",
	"INFORMATION_TECHNOLOGY_AND_SERVICES", "INSURANCE", "INTERNET", "LOGISTICS_AND_SUPPLY_CHAIN",
	"MARKETING_AND_ADVERTISING", "MEDICAL_DEVICES", "OIL_ENERGY", "PHARMACEUTICALS", "REAL_ESTATE",
	"RETAIL", "TELECOMMUNICATIONS", "UTILITIES",
}

// propIssue is one invalid property value, reported the way HubSpot's
// "Property values were not valid" errors do.
type propIssue struct {
	name    string
	code    string
	message string
}

// validationResult is one element of the JSON array embedded in HubSpot's
// "Property values were not valid: [...]" message.
type validationResult struct {
	IsValid               bool   `json:"isValid"`
	Message               string `json:"message"`
	Error                 string `json:"error"`
	Name                  string `json:"name"`
	LocalizedErrorMessage string `json:"localizedErrorMessage"`
	PortalID              int64  `json:"portalId"`
}

// issuesMessage builds "Property values were not valid: [...]".
func issuesMessage(portalID int64, issues []propIssue) string {
	results := make([]validationResult, len(issues))
	for i, is := range issues {
		results[i] = validationResult{Message: is.message, Error: is.code, Name: is.name, LocalizedErrorMessage: is.message, PortalID: portalID}
	}
	b, _ := json.Marshal(results)
	return "Property values were not valid: " + string(b)
}

// issuesDetails is the errors[] list of a property validation error.
func issuesDetails(issues []propIssue) []errorDetail {
	out := make([]errorDetail, len(issues))
	for i, is := range issues {
		out[i] = errorDetail{Message: is.message, Code: is.code, Context: map[string][]string{"propertyName": {is.name}}}
	}
	return out
}

func issuesError(portalID int64, issues []propIssue) *apiError {
	e := newAPIError(400, "VALIDATION_ERROR", issuesMessage(portalID, issues))
	return e.withDetails(issuesDetails(issues)...)
}

// parseDateTime accepts epoch milliseconds or ISO 8601 (with or without time).
func parseDateTime(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z0700", "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// normalizeValue checks raw against def and returns the value as stored.
func (p *Portal) normalizeValue(k *objectKind, def *propertyDef, raw string) (string, *propIssue) {
	if raw == "" {
		return "", nil
	}
	bad := func(code, format string, args ...any) (string, *propIssue) {
		return "", &propIssue{name: def.Name, code: code, message: fmt.Sprintf(format, args...)}
	}
	switch def.Type {
	case "number":
		if _, err := strconv.ParseFloat(strings.TrimSpace(raw), 64); err != nil {
			return bad("INVALID_FLOAT", "%s was not a valid number.", raw)
		}
		return strings.TrimSpace(raw), nil
	case "bool":
		switch strings.ToLower(strings.TrimSpace(raw)) {
		case "true":
			return "true", nil
		case "false":
			return "false", nil
		}
		return bad("INVALID_BOOLEAN", "%s was not a valid boolean (true or false).", raw)
	case "datetime":
		t, ok := parseDateTime(raw)
		if !ok {
			return bad("INVALID_DATETIME", "%s was not a valid datetime: use epoch milliseconds or ISO 8601.", raw)
		}
		return formatTime(t), nil
	case "date":
		t, ok := parseDateTime(raw)
		if !ok {
			return bad("INVALID_DATE", "%s was not a valid date: use YYYY-MM-DD or epoch milliseconds at midnight UTC.", raw)
		}
		if !t.Equal(t.Truncate(24 * time.Hour)) {
			return bad("INVALID_DATE", "%s is at %s UTC, not midnight!", raw, t.Format("15:4:5.000"))
		}
		return t.Format("2006-01-02"), nil
	case "enumeration":
		if def.ownerRef {
			if !p.ownerExists(raw) {
				return bad("INVALID_OWNER_ID", "%s is not a valid owner id", raw)
			}
			return raw, nil
		}
		values := []string{raw}
		if def.FieldType == "checkbox" {
			values = strings.Split(raw, ";")
		}
		for _, v := range values {
			if !slices.ContainsFunc(def.Options, func(o option) bool { return o.Value == v }) {
				allowed := make([]string, len(def.Options))
				for i, o := range def.Options {
					allowed[i] = o.Value
				}
				return bad("INVALID_OPTION", "%s was not one of the allowed options: [%s]", v, strings.Join(allowed, ", "))
			}
		}
		return raw, nil
	}
	// string and phone_number
	if def.maxLen > 0 && len(raw) > def.maxLen {
		return bad("INVALID_LENGTH", "%s is %d characters long; the maximum is %d.", def.Name, len(raw), def.maxLen)
	}
	if k.name == Contacts && def.Name == "email" {
		addr, err := mail.ParseAddress(raw)
		if err != nil || addr.Address != strings.TrimSpace(raw) || !strings.Contains(addr.Address[strings.LastIndex(addr.Address, "@")+1:], ".") {
			return bad("INVALID_EMAIL", "Email address %s is invalid", raw)
		}
		return strings.ToLower(strings.TrimSpace(raw)), nil
	}
	return raw, nil
}

// checkProps validates a write's properties. It returns the normalised
// values ("" means clear) and every invalid value.
func (p *Portal) checkProps(k *objectKind, in map[string]string) (map[string]string, []propIssue) {
	ps := p.props[k.name]
	out := make(map[string]string, len(in))
	var issues []propIssue
	for _, name := range slices.Sorted(maps.Keys(in)) {
		def, ok := ps.get(name)
		if !ok {
			issues = append(issues, propIssue{name: name, code: "PROPERTY_DOESNT_EXIST", message: fmt.Sprintf("Property %q does not exist", name)})
			continue
		}
		if def.ReadOnlyValue {
			issues = append(issues, propIssue{name: name, code: "READ_ONLY_VALUE", message: fmt.Sprintf("%s is a read only property; its value cannot be set.", name)})
			continue
		}
		v, issue := p.normalizeValue(k, def, in[name])
		if issue != nil {
			issues = append(issues, *issue)
			continue
		}
		out[name] = v
	}
	return out, issues
}

// missingRequired lists required properties absent from a create.
func missingRequired(k *objectKind, props map[string]string) []string {
	var missing []string
	for _, r := range k.required {
		if props[r] == "" {
			missing = append(missing, r)
		}
	}
	return missing
}

func requiredError(k *objectKind, missing []string) *apiError {
	e := validationError("Error creating %s. Some required properties were not set.", k.upper)
	return e.withContext("properties", missing...)
}

var propertyNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,99}$`)

var fieldTypesByType = map[string][]string{
	"bool":         {"booleancheckbox", "radio", "select", "calculation_equation"},
	"enumeration":  {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"},
	"number":       {"number", "calculation_equation"},
	"string":       {"text", "textarea", "html", "file", "phonenumber", "calculation_equation"},
	"phone_number": {"phonenumber", "text"},
	"date":         {"date", "calculation_equation"},
	"datetime":     {"date", "calculation_equation"},
}
