package hubspottest

import "strings"

// Object type names as used in paths and in the Portal helpers.
const (
	Contacts  = "contacts"
	Companies = "companies"
	Deals     = "deals"
	Tasks     = "tasks"
	Notes     = "notes"
)

// objectKind describes one CRM object type the sandbox serves.
type objectKind struct {
	name          string   // path name: "contacts"
	typeID        string   // object type id: "0-1"
	upper         string   // "CONTACT", as in HubSpot's messages
	label         string   // "Contact", as in "Contact already exists"
	event         string   // webhook subscription prefix ("contact"); "" if none
	createdProp   string   // "createdate" or "hs_createdate"
	modifiedProp  string   // "lastmodifieddate" or "hs_lastmodifieddate"
	required      []string // properties required on create
	defaultProps  []string // returned when a read names no properties
	queryProps    []string // properties the search "query" text matches
	defaultGroup  string   // property group of built-in properties
	importObjType string   // PublicImportError.objectType
}

// kindRegistry resolves object type names, singular names and type ids.
type kindRegistry struct {
	byName map[string]*objectKind
	all    []*objectKind
}

func newKindRegistry() *kindRegistry {
	all := []*objectKind{
		{
			name: Contacts, typeID: "0-1", upper: "CONTACT", label: "Contact", event: "contact",
			createdProp: "createdate", modifiedProp: "lastmodifieddate",
			defaultProps: []string{"email", "firstname", "lastname", "createdate", "lastmodifieddate", "hs_object_id"},
			queryProps:   []string{"email", "firstname", "lastname", "phone", "company", "hs_additional_emails"},
			defaultGroup: "contactinformation", importObjType: "CONTACT",
		},
		{
			name: Companies, typeID: "0-2", upper: "COMPANY", label: "Company", event: "company",
			createdProp: "createdate", modifiedProp: "hs_lastmodifieddate",
			defaultProps: []string{"name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"},
			queryProps:   []string{"name", "domain", "website", "phone", "hs_additional_domains"},
			defaultGroup: "companyinformation", importObjType: "COMPANY",
		},
		{
			name: Deals, typeID: "0-3", upper: "DEAL", label: "Deal", event: "deal",
			createdProp: "createdate", modifiedProp: "hs_lastmodifieddate",
			defaultProps: []string{"dealname", "amount", "closedate", "pipeline", "dealstage", "createdate", "hs_lastmodifieddate", "hs_object_id"},
			queryProps:   []string{"dealname", "description"},
			defaultGroup: "dealinformation", importObjType: "DEAL",
		},
		{
			name: Tasks, typeID: "0-27", upper: "TASK", label: "Task",
			createdProp: "hs_createdate", modifiedProp: "hs_lastmodifieddate",
			required:     []string{"hs_timestamp"},
			defaultProps: []string{"hs_createdate", "hs_lastmodifieddate", "hs_object_id"},
			queryProps:   []string{"hs_task_subject", "hs_task_body"},
			defaultGroup: "taskinformation", importObjType: "TASK",
		},
		{
			name: Notes, typeID: "0-46", upper: "NOTE", label: "Note",
			createdProp: "hs_createdate", modifiedProp: "hs_lastmodifieddate",
			required:     []string{"hs_timestamp"},
			defaultProps: []string{"hs_createdate", "hs_lastmodifieddate", "hs_object_id"},
			queryProps:   []string{"hs_note_body"},
			defaultGroup: "noteinformation", importObjType: "NOTE",
		},
	}
	reg := &kindRegistry{byName: map[string]*objectKind{}, all: all}
	for _, k := range all {
		reg.byName[k.name] = k
		reg.byName[k.typeID] = k
		reg.byName[strings.TrimSuffix(k.name, "s")] = k
		reg.byName[strings.ToLower(k.upper)] = k
	}
	reg.byName["company"] = reg.byName[Companies]
	return reg
}

// lookup resolves "contacts", "contact", "CONTACT" or "0-1".
func (r *kindRegistry) lookup(name string) (*objectKind, bool) {
	k, ok := r.byName[strings.ToLower(name)]
	return k, ok
}

// assocType is one HUBSPOT_DEFINED association type.
type assocType struct {
	id       int
	from, to string // object type names
	label    string // "" for unlabeled; "Primary" for primary types
	reverse  int    // the type id of the inverse direction
	primary  bool
	category string
}

// assocRegistry holds the HUBSPOT_DEFINED association types (ids from
// HubSpot's AssociationTypes enum; see design/hubspot-api.md §3).
type assocRegistry struct {
	byID      map[int]assocType
	defaults  map[[2]string]int // (from,to) -> default (unlabeled) type id
	primaries map[[2]string]int // (from,to) -> primary type id, where one exists
}

func newAssocRegistry() *assocRegistry {
	pairs := []struct {
		from, to     string
		fwd, rev     int
		label        string
		primary      bool
		defaultTypes bool
	}{
		{Contacts, Companies, 279, 280, "", false, true},
		{Contacts, Companies, 1, 2, "Primary", true, false},
		{Deals, Companies, 341, 342, "", false, true},
		{Deals, Companies, 5, 6, "Primary", true, false},
		{Deals, Contacts, 3, 4, "", false, true},
		{Tasks, Contacts, 204, 203, "", false, true},
		{Tasks, Companies, 192, 191, "", false, true},
		{Tasks, Deals, 216, 215, "", false, true},
		{Notes, Contacts, 202, 201, "", false, true},
		{Notes, Companies, 190, 189, "", false, true},
		{Notes, Deals, 214, 213, "", false, true},
	}
	reg := &assocRegistry{byID: map[int]assocType{}, defaults: map[[2]string]int{}, primaries: map[[2]string]int{}}
	for _, p := range pairs {
		// Only the contact/deal -> company direction is "primary"; the
		// inverse type carries the same label.
		reg.byID[p.fwd] = assocType{id: p.fwd, from: p.from, to: p.to, label: p.label, reverse: p.rev, primary: p.primary, category: "HUBSPOT_DEFINED"}
		reg.byID[p.rev] = assocType{id: p.rev, from: p.to, to: p.from, label: p.label, reverse: p.fwd, primary: p.primary, category: "HUBSPOT_DEFINED"}
		if p.defaultTypes {
			reg.defaults[[2]string{p.from, p.to}] = p.fwd
			reg.defaults[[2]string{p.to, p.from}] = p.rev
		}
		if p.primary {
			reg.primaries[[2]string{p.from, p.to}] = p.fwd
			reg.primaries[[2]string{p.to, p.from}] = p.rev
		}
	}
	return reg
}

// between lists the type ids defined from one object type to another.
func (r *assocRegistry) between(from, to string) []assocType {
	var out []assocType
	for _, t := range r.byID {
		if t.from == from && t.to == to {
			out = append(out, t)
		}
	}
	return out
}

// eventAssocName is the associationType field of associationChange events,
// e.g. CONTACT_TO_COMPANY.
func eventAssocName(from, to *objectKind) string { return from.upper + "_TO_" + to.upper }
