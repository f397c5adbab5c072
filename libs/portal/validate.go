package portal

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"
)

// ErrInvalidConfig is wrapped by every [*ValidationError], for errors.Is.
var ErrInvalidConfig = errors.New("invalid portal config")

// Problem is one thing wrong with a config.
type Problem struct {
	// Path is the field path: "field_mappings[2].targets[0].strategy". Empty for
	// problems with the document as a whole (YAML syntax).
	Path string
	// Message says what is wrong.
	Message string
	// Line is the 1-based line in the YAML source, when known (0 otherwise).
	Line int
}

// String formats the problem as "path: message (line N)".
func (p Problem) String() string {
	var b strings.Builder
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	if p.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	return b.String()
}

// ValidationError lists every problem found in a config.
type ValidationError struct {
	// PortalID is the config's portal id, when it had one.
	PortalID string
	Problems []Problem
}

// Error joins the problems on one line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid portal config")
	if e.PortalID != "" {
		fmt.Fprintf(&b, " %q", e.PortalID)
	}
	if len(e.Problems) != 1 {
		fmt.Fprintf(&b, " (%d problems)", len(e.Problems))
	}
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap returns [ErrInvalidConfig].
func (e *ValidationError) Unwrap() error { return ErrInvalidConfig }

// problems collects problems during validation.
type problems []Problem

func (ps *problems) add(path, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (ps problems) err(portalID string) error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{PortalID: portalID, Problems: ps}
}

var (
	portalIDRe       = regexp.MustCompile(`^[1-9][0-9]{0,19}$`)
	secretNameRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`)
	uuidLikeRe       = regexp.MustCompile(`(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	sourceRe         = regexp.MustCompile(`^(account|contact)\.[a-z][a-z0-9_]{0,99}$`)
	propertyRe       = regexp.MustCompile(`^[a-z][a-z0-9_]{0,99}$`)
	signalTypeRe     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	keyNameRe        = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	keyHashRe        = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	propertyPrefixRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,29}$`)
	groupNameRe      = regexp.MustCompile(`^[a-z][a-z0-9_]{0,99}$`)
	ownerIDRe        = regexp.MustCompile(`^[1-9][0-9]{0,19}$`)
)

const (
	maxNameLen         = 200
	maxTextLen         = 255
	maxBodyLen         = 65536
	maxCRMReadInterval = 24 * time.Hour
	maxTaskDueIn       = 365 * 24 * time.Hour
	maxImportThreshold = 1_048_576 // rows per file the CRM Imports API accepts
)

// oneOf reports a problem unless v is one of allowed.
func oneOf[T ~string](ps *problems, path string, v T, allowed ...T) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	if v == "" {
		ps.add(path, "required: one of %s", strings.Join(names, ", "))
		return
	}
	ps.add(path, "%q is not one of %s", string(v), strings.Join(names, ", "))
}

// Validate checks the whole config and returns a [*ValidationError] listing every
// problem with its field path, or nil. It expects defaults to be applied
// ([Parse] does that; see [Config.ApplyDefaults]).
func (c *Config) Validate() error {
	var ps problems
	c.validate(&ps)
	return ps.err(c.PortalID)
}

func (c *Config) validate(ps *problems) {
	switch {
	case c.PortalID == "":
		ps.add("portal_id", "required: the HubSpot portal id")
	case !portalIDRe.MatchString(c.PortalID):
		ps.add("portal_id", "%q must be the HubSpot portal id: digits only, no leading zero", c.PortalID)
	}
	checkText(ps, "name", c.Name, maxNameLen, true)
	c.HubSpot.validate(ps)
	c.Sync.validate(ps)
	c.validateFieldMappings(ps)
	c.validateAutomations(ps)
	c.ScoreSync.validate(ps)
	c.Ingest.validate(ps)
	c.validateSignalTypes(ps)
}

func checkText(ps *problems, path, v string, maxLen int, required bool) {
	switch {
	case strings.TrimSpace(v) == "":
		if required {
			ps.add(path, "required")
		} else if v != "" {
			ps.add(path, "must not be blank")
		}
	case len(v) > maxLen:
		ps.add(path, "is %d bytes long, at most %d allowed", len(v), maxLen)
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0:
		ps.add(path, "contains control characters")
	}
}

// checkSecretName validates the name of a secret, and catches secret values
// pasted in by mistake.
func checkSecretName(ps *problems, path, v string, required bool) {
	switch {
	case v == "":
		if required {
			ps.add(path, "required: the name of the secret (environment variable or mounted file)")
		}
	case strings.HasPrefix(v, "pat-"):
		ps.add(path, "looks like a HubSpot private app token; give the NAME of the secret that holds it, never the token")
	case strings.HasPrefix(v, apiKeyPrefix) || uuidLikeRe.MatchString(v):
		ps.add(path, "looks like a secret value; give the NAME of the secret that holds it, never the value")
	case !secretNameRe.MatchString(v):
		// Never echo the value: it may be a secret pasted in by mistake.
		ps.add(path, "is not a secret name: letters, digits, '_', '.', '-', starting with a letter or '_', at most 128")
	}
}

func (h *HubSpot) validate(ps *problems) {
	a := h.Auth
	oneOf(ps, "hubspot.auth.type", a.Type, AuthPrivateApp, AuthServiceKey, AuthOAuth)
	switch a.Type {
	case AuthPrivateApp, AuthServiceKey:
		checkSecretName(ps, "hubspot.auth.secret", a.Secret, true)
		for _, f := range []struct{ path, value string }{
			{"hubspot.auth.client_id_secret", a.ClientIDSecret},
			{"hubspot.auth.client_secret_secret", a.ClientSecretSecret},
			{"hubspot.auth.refresh_token_secret", a.RefreshTokenSecret},
		} {
			if f.value != "" {
				ps.add(f.path, "only valid for auth type oauth, not %s", a.Type)
			}
		}
	case AuthOAuth:
		checkSecretName(ps, "hubspot.auth.client_id_secret", a.ClientIDSecret, true)
		checkSecretName(ps, "hubspot.auth.client_secret_secret", a.ClientSecretSecret, true)
		checkSecretName(ps, "hubspot.auth.refresh_token_secret", a.RefreshTokenSecret, true)
		if a.Secret != "" {
			ps.add("hubspot.auth.secret", "not used by auth type oauth; use client_id_secret, client_secret_secret and refresh_token_secret")
		}
	}
	oneOf(ps, "hubspot.tier", h.Tier, TierFree, TierStarter, TierProfessional, TierEnterprise, TierAPIAddon)
	oneOf(ps, "hubspot.api_version", h.APIVersion, APIVersionV3, APIVersion202603, APIVersion202609)
	if h.AppID < 0 {
		ps.add("hubspot.app_id", "%d must be a positive HubSpot app id", h.AppID)
	}
	checkSecretName(ps, "hubspot.webhook_secret", h.WebhookSecret, false)
	oneOf(ps, "hubspot.webhook_signature_version", h.WebhookSignatureVersion, SignatureV3, SignatureV2, SignatureV1)
}

func (s *Sync) validate(ps *problems) {
	oneOf(ps, "sync.accounts", s.Accounts, AccountsCreateAndUpdate, AccountsUpdateOnly)
	oneOf(ps, "sync.contacts", s.Contacts, ContactsCreateAndUpdate, ContactsUpdateOnly, ContactsDisabled)
	checkDuration(ps, "sync.crm_read_interval", s.CRMReadInterval, MinCRMReadInterval, maxCRMReadInterval)
}

func checkDuration(ps *problems, path string, d Duration, lo, hi time.Duration) {
	switch {
	case d.invalid != "":
		ps.add(path, "%q is not a duration such as \"30m\" or \"1h\"", d.invalid)
	case d.Duration < lo:
		ps.add(path, "%s is shorter than the minimum %s", d.Duration, lo)
	case d.Duration > hi:
		ps.add(path, "%s is longer than the maximum %s", d.Duration, hi)
	}
}

func (c *Config) validateFieldMappings(ps *problems) {
	sources := map[string]int{}
	targets := map[string]string{}
	for i, m := range c.FieldMappings {
		mp := fmt.Sprintf("field_mappings[%d]", i)
		entity, _, _ := strings.Cut(m.Source, ".")
		switch {
		case m.Source == "":
			ps.add(mp+".source", "required: \"account.<field>\" or \"contact.<field>\"")
		case !sourceRe.MatchString(m.Source):
			ps.add(mp+".source", "%q must be \"account.<field>\" or \"contact.<field>\" (field: lower-case letters, digits, '_')", m.Source)
		default:
			if j, dup := sources[m.Source]; dup {
				ps.add(mp+".source", "%q is already mapped by field_mappings[%d]; list all its targets there", m.Source, j)
			} else {
				sources[m.Source] = i
			}
		}
		if len(m.Targets) == 0 {
			ps.add(mp+".targets", "at least one target is required")
		}
		for j, t := range m.Targets {
			tp := fmt.Sprintf("%s.targets[%d]", mp, j)
			oneOf(ps, tp+".object", t.Object, ObjectCompany, ObjectContact)
			switch {
			case entity == "account" && t.Object == ObjectContact:
				ps.add(tp+".object", "an account field can only be written to company properties")
			case entity == "contact" && t.Object == ObjectCompany:
				ps.add(tp+".object", "a contact field can only be written to contact properties")
			}
			switch {
			case t.Property == "":
				ps.add(tp+".property", "required: the HubSpot internal property name")
			case !propertyRe.MatchString(t.Property):
				ps.add(tp+".property", "%q is not a HubSpot internal property name (lower-case letters, digits, '_', starting with a letter)", t.Property)
			default:
				key := string(t.Object) + "." + t.Property
				if prev, dup := targets[key]; dup {
					ps.add(tp, "%s is already written by %s", key, prev)
				} else {
					targets[key] = tp
				}
			}
			oneOf(ps, tp+".strategy", t.Strategy, StrategyOverwrite, StrategyUpdateIfEmpty)
			if t.Strategy == StrategyUpdateIfEmpty && IsScoreSource(m.Source) {
				ps.add(tp+".strategy", "%q: %s is written by score sync, which replaces the value on every run; use %s (the default for scores)",
					t.Strategy, m.Source, StrategyOverwrite)
			}
		}
	}
}

func (c *Config) validateAutomations(ps *problems) {
	names := map[string]int{}
	for i, a := range c.Automations {
		ap := fmt.Sprintf("automations[%d]", i)
		checkText(ps, ap+".name", a.Name, maxTextLen, true)
		if a.Name != "" {
			if j, dup := names[a.Name]; dup {
				ps.add(ap+".name", "%q is already used by automations[%d]", a.Name, j)
			} else {
				names[a.Name] = i
			}
		}
		for j, t := range a.When.SignalTypes {
			if !c.SignalTypeAllowed(t) {
				ps.add(fmt.Sprintf("%s.when.signal_types[%d]", ap, j), "%q is not one of the portal's signal_types", t)
			}
		}
		if a.When.MinStrength != "" {
			oneOf(ps, ap+".when.min_strength", a.When.MinStrength, StrengthLow, StrengthMedium, StrengthHigh)
		}
		for j, s := range a.When.Segments {
			checkText(ps, fmt.Sprintf("%s.when.segments[%d]", ap, j), s, maxTextLen, true)
		}
		if len(a.Actions) == 0 {
			ps.add(ap+".actions", "at least one action is required")
		}
		for j, act := range a.Actions {
			c.validateAction(ps, fmt.Sprintf("%s.actions[%d]", ap, j), act)
		}
	}
}

func (c *Config) validateAction(ps *problems, path string, a Action) {
	oneOf(ps, path+".kind", a.Kind, ActionImportCompany, ActionImportContact, ActionAddToList, ActionCreateTask, ActionTimelineNote, ActionClaimAccount)
	only := func(field string, set bool, kind ActionKind) {
		if set && a.Kind != kind {
			ps.add(path+"."+field, "only valid for kind %s", kind)
		}
	}
	only("list_name", a.ListName != "", ActionAddToList)
	only("task", a.Task != nil, ActionCreateTask)
	only("note", a.Note != "", ActionTimelineNote)
	only("owner_id", a.OwnerID != "", ActionClaimAccount)

	switch a.Kind {
	case ActionImportCompany:
		if c.Sync.Accounts != AccountsCreateAndUpdate {
			ps.add(path+".kind", "import_company creates companies, but sync.accounts is %q; set it to create-and-update", c.Sync.Accounts)
		}
	case ActionImportContact:
		if c.Sync.Contacts != ContactsCreateAndUpdate {
			ps.add(path+".kind", "import_contact creates contacts, but sync.contacts is %q; set it to create-and-update", c.Sync.Contacts)
		}
	case ActionAddToList:
		checkText(ps, path+".list_name", a.ListName, maxTextLen, true)
	case ActionCreateTask:
		if a.Task == nil {
			ps.add(path+".task", "required for kind create_task")
			return
		}
		tp := path + ".task"
		checkText(ps, tp+".subject", a.Task.Subject, maxTextLen, true)
		checkTemplate(ps, tp+".subject", a.Task.Subject)
		checkText(ps, tp+".body", a.Task.Body, maxBodyLen, false)
		checkTemplate(ps, tp+".body", a.Task.Body)
		oneOf(ps, tp+".priority", a.Task.Priority, PriorityLow, PriorityMedium, PriorityHigh)
		oneOf(ps, tp+".type", a.Task.Type, TaskTodo, TaskCall, TaskEmail)
		checkDuration(ps, tp+".due_in", a.Task.DueIn, time.Minute, maxTaskDueIn)
	case ActionTimelineNote:
		checkText(ps, path+".note", a.Note, maxBodyLen, true)
		checkTemplate(ps, path+".note", a.Note)
	case ActionClaimAccount:
		switch {
		case a.OwnerID == "":
			ps.add(path+".owner_id", "required for kind claim_account: the HubSpot owner id")
		case !ownerIDRe.MatchString(a.OwnerID):
			ps.add(path+".owner_id", "%q must be a HubSpot owner id (digits)", a.OwnerID)
		}
	}
}

// checkTemplate checks that a text (task subject and body, note) parses as a
// Go text/template; the action service fills in the signal's fields.
func checkTemplate(ps *problems, path, text string) {
	if !strings.Contains(text, "{{") {
		return
	}
	if _, err := template.New(path).Parse(text); err != nil {
		ps.add(path, "is not a valid template: %v", err)
	}
}

func (s *ScoreSync) validate(ps *problems) {
	if s.Schedule == "" {
		ps.add("score_sync.schedule", "required: a 5-field cron expression such as \"0 2 * * *\"")
	} else if _, err := ParseCron(s.Schedule); err != nil {
		ps.add("score_sync.schedule", "%v", err)
	}
	switch {
	case s.TimeZone == "":
		ps.add("score_sync.time_zone", "required: an IANA time zone such as \"Europe/Berlin\"")
	case s.TimeZone == "Local":
		ps.add("score_sync.time_zone", "\"Local\" depends on the machine; name an IANA time zone such as \"Europe/Berlin\"")
	default:
		if _, err := time.LoadLocation(s.TimeZone); err != nil {
			ps.add("score_sync.time_zone", "%q is not a known IANA time zone", s.TimeZone)
		}
	}
	switch {
	case s.PropertyPrefix == "":
		ps.add("score_sync.property_prefix", "required")
	case !propertyPrefixRe.MatchString(s.PropertyPrefix):
		ps.add("score_sync.property_prefix", "%q must start a HubSpot property name: lower-case letters, digits, '_', starting with a letter, at most 30", s.PropertyPrefix)
	}
	switch {
	case s.Group.Name == "":
		ps.add("score_sync.group.name", "required")
	case !groupNameRe.MatchString(s.Group.Name):
		ps.add("score_sync.group.name", "%q is not a HubSpot property group name (lower-case letters, digits, '_', starting with a letter)", s.Group.Name)
	}
	checkText(ps, "score_sync.group.label", s.Group.Label, maxTextLen, true)
	if s.ImportThreshold < 1 || s.ImportThreshold > maxImportThreshold {
		ps.add("score_sync.import_threshold", "%d must be between 1 and %d", s.ImportThreshold, maxImportThreshold)
	}
}

func (in *Ingest) validate(ps *problems) {
	names := map[string]int{}
	hashes := map[string]int{}
	for i, k := range in.APIKeys {
		kp := fmt.Sprintf("ingest.api_keys[%d]", i)
		switch {
		case k.Name == "":
			ps.add(kp+".name", "required: who holds the key, e.g. \"web-analytics\"")
		case !keyNameRe.MatchString(k.Name):
			ps.add(kp+".name", "%q must be lower-case letters, digits, '_', '.', '-', at most 64", k.Name)
		default:
			if j, dup := names[k.Name]; dup {
				ps.add(kp+".name", "%q is already used by ingest.api_keys[%d]", k.Name, j)
			} else {
				names[k.Name] = i
			}
		}
		switch {
		case k.Hash == "":
			ps.add(kp+".hash", "required: \"sha256:<64 hex digits>\" as printed by HashAPIKey")
		case !strings.HasPrefix(k.Hash, "sha256:"):
			// Never echo the value: it may be a live key.
			ps.add(kp+".hash", "is not a hash; a plain API key must never be stored: put HashAPIKey(key) (\"sha256:<64 hex digits>\") here")
		case !keyHashRe.MatchString(k.Hash):
			ps.add(kp+".hash", "must be \"sha256:\" followed by 64 lower-case hex digits")
		default:
			if j, dup := hashes[k.Hash]; dup {
				ps.add(kp+".hash", "same key as ingest.api_keys[%d]", j)
			} else {
				hashes[k.Hash] = i
			}
		}
	}
}

func (c *Config) validateSignalTypes(ps *problems) {
	seen := map[string]int{}
	for i, t := range c.SignalTypes {
		p := "signal_types[" + strconv.Itoa(i) + "]"
		if !signalTypeRe.MatchString(t) {
			ps.add(p, "%q must be lower-case letters, digits, '_', starting with a letter, at most 64", t)
			continue
		}
		if j, dup := seen[t]; dup {
			ps.add(p, "%q is already listed at signal_types[%d]", t, j)
			continue
		}
		seen[t] = i
	}
}
