// Package portal models the configuration of one tenant: a HubSpot portal
// (account) and everything signalbridge does for it. A config is written as YAML
// by a RevOps admin (see testdata/demo-portal.yaml), parsed strictly and validated
// by [Parse], stored in the JetStream KV bucket "portals" by [Store], and watched
// live by every service replica through [Registry].
//
// A config holds the NAMES of secrets (environment variables or mounted files),
// never their values: the services resolve them at run time, and secrets never
// reach KV or logs.
package portal

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is one portal's configuration.
type Config struct {
	// PortalID is the HubSpot portal (account) id: digits only. It is the KV key.
	PortalID string `yaml:"portal_id" json:"portal_id"`
	// Name is a human-readable label for the portal.
	Name          string         `yaml:"name" json:"name"`
	HubSpot       HubSpot        `yaml:"hubspot" json:"hubspot"`
	Sync          Sync           `yaml:"sync" json:"sync"`
	FieldMappings []FieldMapping `yaml:"field_mappings,omitempty" json:"field_mappings,omitempty"`
	Automations   []Automation   `yaml:"automations,omitempty" json:"automations,omitempty"`
	ScoreSync     ScoreSync      `yaml:"score_sync" json:"score_sync"`
	Ingest        Ingest         `yaml:"ingest" json:"ingest"`
	// SignalTypes lists the signal types ingest accepts for this portal.
	// Empty means [DefaultSignalTypes] (filled in by [Config.ApplyDefaults]).
	SignalTypes []string `yaml:"signal_types,omitempty" json:"signal_types,omitempty"`
}

// HubSpot says how to reach the portal's HubSpot account.
type HubSpot struct {
	Auth Auth `yaml:"auth" json:"auth"`
	// Tier is the portal's HubSpot subscription tier; it sets the rate limits ([Config.Limits]).
	Tier Tier `yaml:"tier" json:"tier"`
	// APIVersion selects the API path segment: "v3" (default) or a date-based
	// version such as "2026-03".
	APIVersion APIVersion `yaml:"api_version" json:"api_version"`
	// AppID is the HubSpot app id (optional): webhooks carry it, and it marks
	// changes made by our own app so that two-way sync can suppress echoes.
	AppID int64 `yaml:"app_id,omitempty" json:"app_id,omitempty"`
	// WebhookSecret names the secret holding the app's client secret, used to
	// verify webhook signatures (optional: no webhooks without it).
	WebhookSecret string `yaml:"webhook_secret,omitempty" json:"webhook_secret,omitempty"`
	// WebhookSignatureVersion is the signature scheme HubSpot uses: v3 (default), v2 or v1.
	WebhookSignatureVersion SignatureVersion `yaml:"webhook_signature_version" json:"webhook_signature_version"`
}

// Auth names the secrets used to authenticate against HubSpot.
type Auth struct {
	Type AuthType `yaml:"type" json:"type"`
	// Secret names the private-app token or service key (types private_app and service_key).
	Secret string `yaml:"secret,omitempty" json:"secret,omitempty"`
	// ClientIDSecret, ClientSecretSecret and RefreshTokenSecret name the OAuth
	// client id, client secret and refresh token (type oauth).
	ClientIDSecret     string `yaml:"client_id_secret,omitempty" json:"client_id_secret,omitempty"`
	ClientSecretSecret string `yaml:"client_secret_secret,omitempty" json:"client_secret_secret,omitempty"`
	RefreshTokenSecret string `yaml:"refresh_token_secret,omitempty" json:"refresh_token_secret,omitempty"`
}

// AuthType is how signalbridge authenticates against HubSpot.
type AuthType string

// Authentication types.
const (
	AuthPrivateApp AuthType = "private_app"
	AuthServiceKey AuthType = "service_key"
	AuthOAuth      AuthType = "oauth"
)

// Tier is a HubSpot subscription tier.
type Tier string

// HubSpot tiers. TierAPIAddon is Enterprise with one API Limit Increase pack.
const (
	TierFree         Tier = "free"
	TierStarter      Tier = "starter"
	TierProfessional Tier = "professional"
	TierEnterprise   Tier = "enterprise"
	TierAPIAddon     Tier = "api_addon"
)

// APIVersion is the HubSpot API version segment.
type APIVersion string

// Supported API versions.
const (
	APIVersionV3     APIVersion = "v3"
	APIVersion202603 APIVersion = "2026-03"
	APIVersion202609 APIVersion = "2026-09"
)

// SignatureVersion is the HubSpot webhook signature scheme.
type SignatureVersion string

// Webhook signature versions.
const (
	SignatureV1 SignatureVersion = "v1"
	SignatureV2 SignatureVersion = "v2"
	SignatureV3 SignatureVersion = "v3"
)

// Sync sets the sync modes.
type Sync struct {
	// Accounts: may signalbridge create companies, or only update matched ones?
	Accounts AccountSyncMode `yaml:"accounts" json:"accounts"`
	// Contacts: two-way contact sync mode.
	Contacts ContactSyncMode `yaml:"contacts" json:"contacts"`
	// CRMReadInterval is how often the matcher re-reads the CRM incrementally (≥ 5m, default 1h).
	CRMReadInterval Duration `yaml:"crm_read_interval" json:"crm_read_interval"`
}

// AccountSyncMode says what signalbridge may do to HubSpot companies.
type AccountSyncMode string

// Account sync modes.
const (
	AccountsCreateAndUpdate AccountSyncMode = "create-and-update"
	AccountsUpdateOnly      AccountSyncMode = "update-only"
)

// ContactSyncMode says what signalbridge may do to HubSpot contacts.
type ContactSyncMode string

// Contact sync modes.
const (
	ContactsCreateAndUpdate ContactSyncMode = "create-and-update"
	ContactsUpdateOnly      ContactSyncMode = "update-only"
	ContactsDisabled        ContactSyncMode = "disabled"
)

// FieldMapping copies one source field into one or more HubSpot properties.
//
// The account scores that score sync writes ([ScoreFields]: account.intent_score,
// account.intent_strength, account.intent_trend, account.icp_fit_score,
// account.icp_fit_grade) are sources too. Without a mapping, score sync writes a score to
// the property it manages, <score_sync.property_prefix><score> ("sb_intent_score"); a
// mapping sends it to existing company properties instead:
//
//	field_mappings:
//	  - source: account.intent_score
//	    targets: [ { object: company, property: my_existing_prop } ]
//
// Score sync replaces score values on every run, so a score's targets default to, and
// must have, strategy overwrite. Before writing, score sync checks each such property: it
// must exist and be writable, be a number for intent_score and icp_fit_score, and for the
// three others either a single-choice select or radio holding every value (by internal
// value or label) or a text property; a run with an incompatible mapping fails, naming the
// property and what is missing.
type FieldMapping struct {
	// Source is "<entity>.<field>", entity account or contact: "account.industry".
	Source  string   `yaml:"source" json:"source"`
	Targets []Target `yaml:"targets" json:"targets"`
}

// Target is one HubSpot property written from a mapping's source.
type Target struct {
	// Object is the HubSpot object: company (for account sources) or contact (for contact sources).
	Object Object `yaml:"object" json:"object"`
	// Property is the HubSpot internal property name.
	Property string `yaml:"property" json:"property"`
	// Strategy: overwrite, or update-if-empty (default; for score sources, see
	// [IsScoreSource], the default and only choice is overwrite).
	Strategy Strategy `yaml:"strategy" json:"strategy"`
}

// Object is a HubSpot CRM object type that mappings can write.
type Object string

// Writable objects.
const (
	ObjectCompany Object = "company"
	ObjectContact Object = "contact"
)

// Strategy is a per-property write policy.
type Strategy string

// Write strategies.
const (
	// StrategyOverwrite always writes the source value.
	StrategyOverwrite Strategy = "overwrite"
	// StrategyUpdateIfEmpty writes only when the HubSpot property is empty, so
	// values entered by people in HubSpot are never replaced.
	StrategyUpdateIfEmpty Strategy = "update-if-empty"
)

// Automation runs actions when a matched signal qualifies.
type Automation struct {
	// Name identifies the automation; unique within the portal.
	Name    string   `yaml:"name" json:"name"`
	When    When     `yaml:"when" json:"when"`
	Actions []Action `yaml:"actions" json:"actions"`
}

// When is an automation's qualifying filter. Empty lists match everything.
type When struct {
	// SignalTypes the automation reacts to; each must be one of the portal's signal types.
	SignalTypes []string `yaml:"signal_types,omitempty" json:"signal_types,omitempty"`
	// MinStrength is the weakest signal strength that qualifies (empty: any).
	MinStrength Strength `yaml:"min_strength,omitempty" json:"min_strength,omitempty"`
	// Segments the account must be in (any of them; empty: any account).
	Segments []string `yaml:"segments,omitempty" json:"segments,omitempty"`
}

// Strength grades a signal.
type Strength string

// Signal strengths, weakest first.
const (
	StrengthLow    Strength = "low"
	StrengthMedium Strength = "medium"
	StrengthHigh   Strength = "high"
)

// Rank orders strengths: low 1, medium 2, high 3; anything else 0.
func (s Strength) Rank() int {
	switch s {
	case StrengthLow:
		return 1
	case StrengthMedium:
		return 2
	case StrengthHigh:
		return 3
	}
	return 0
}

// AtLeast reports whether s meets the minimum min. An empty min is met by any strength.
func (s Strength) AtLeast(minimum Strength) bool {
	if minimum == "" {
		return true
	}
	return s.Rank() >= minimum.Rank() && s.Rank() > 0
}

// Action is one thing an automation does. Which fields apply depends on Kind.
type Action struct {
	Kind ActionKind `yaml:"kind" json:"kind"`
	// ListName is the HubSpot list to add the contact or company to (add_to_list).
	ListName string `yaml:"list_name,omitempty" json:"list_name,omitempty"`
	// Task describes the task to create (create_task).
	Task *Task `yaml:"task,omitempty" json:"task,omitempty"`
	// Note is the timeline note body; it may use Go template fields such as
	// {{.SignalType}} (timeline_note).
	Note string `yaml:"note,omitempty" json:"note,omitempty"`
	// OwnerID is the HubSpot owner who claims an unowned company (claim_account).
	OwnerID string `yaml:"owner_id,omitempty" json:"owner_id,omitempty"`
}

// ActionKind names an action.
type ActionKind string

// Action kinds.
const (
	ActionImportCompany ActionKind = "import_company"
	ActionImportContact ActionKind = "import_contact"
	ActionAddToList     ActionKind = "add_to_list"
	ActionCreateTask    ActionKind = "create_task"
	ActionTimelineNote  ActionKind = "timeline_note"
	ActionClaimAccount  ActionKind = "claim_account"
)

// Task is a HubSpot task created by an automation.
// Subject and Body are Go text/templates over the matched signal, like Action.Note.
type Task struct {
	Subject string `yaml:"subject" json:"subject"`
	// Body is the task's notes (optional).
	Body string `yaml:"body,omitempty" json:"body,omitempty"`
	// Priority is LOW, MEDIUM (default) or HIGH.
	Priority TaskPriority `yaml:"priority,omitempty" json:"priority,omitempty"`
	// Type is TODO (default), CALL or EMAIL.
	Type TaskType `yaml:"type,omitempty" json:"type,omitempty"`
	// DueIn is the time from the signal to the task's due date (default 24h).
	DueIn Duration `yaml:"due_in,omitempty" json:"due_in,omitempty"`
}

// TaskPriority is HubSpot's hs_task_priority.
type TaskPriority string

// Task priorities.
const (
	PriorityLow    TaskPriority = "LOW"
	PriorityMedium TaskPriority = "MEDIUM"
	PriorityHigh   TaskPriority = "HIGH"
)

// TaskType is HubSpot's hs_task_type.
type TaskType string

// Task types.
const (
	TaskTodo  TaskType = "TODO"
	TaskCall  TaskType = "CALL"
	TaskEmail TaskType = "EMAIL"
)

// ScoreSync configures the nightly score snapshot into HubSpot. Each of the
// [ScoreFields] goes to the managed company property <PropertyPrefix><score>, created in
// Group, unless field_mappings sends it to existing properties (see [FieldMapping]).
type ScoreSync struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Schedule is a 5-field cron expression (minute hour day-of-month month
	// day-of-week) or a macro such as @daily, evaluated in TimeZone. Default "0 2 * * *".
	Schedule string `yaml:"schedule" json:"schedule"`
	// TimeZone is an IANA zone name (default "UTC").
	TimeZone string `yaml:"time_zone" json:"time_zone"`
	// PropertyPrefix prefixes every score property signalbridge manages (default "sb_").
	PropertyPrefix string `yaml:"property_prefix" json:"property_prefix"`
	// Group is the HubSpot property group holding the score properties.
	Group PropertyGroup `yaml:"group" json:"group"`
	// ImportThreshold: a run writing at least this many rows uses the CRM Imports
	// API instead of batch upserts (default 5000).
	ImportThreshold int `yaml:"import_threshold" json:"import_threshold"`
}

// ScoreFields returns the account scores score sync writes to HubSpot, by field name (a
// fresh slice on every call). As field_mappings sources they are "account.<field>".
func ScoreFields() []string {
	return []string{"intent_score", "intent_strength", "intent_trend", "icp_fit_score", "icp_fit_grade"}
}

// IsScoreSource reports whether a field_mappings source is one of the [ScoreFields]
// ("account.intent_score"): score sync writes its targets.
func IsScoreSource(source string) bool {
	field, ok := strings.CutPrefix(source, "account.")
	return ok && slices.Contains(ScoreFields(), field)
}

// PropertyGroup is a HubSpot property group.
type PropertyGroup struct {
	Name  string `yaml:"name" json:"name"`
	Label string `yaml:"label" json:"label"`
}

// Ingest configures the ingest API for this portal.
type Ingest struct {
	// APIKeys are the keys allowed to post signals and scores, stored as hashes only.
	APIKeys []APIKey `yaml:"api_keys,omitempty" json:"api_keys,omitempty"`
}

// APIKey is one named ingest key, by hash.
type APIKey struct {
	// Name says who holds the key ("web-analytics"); unique within the portal.
	Name string `yaml:"name" json:"name"`
	// Hash is [HashAPIKey] of the key: "sha256:" followed by 64 lower-case hex digits.
	Hash string `yaml:"hash" json:"hash"`
}

// DefaultSignalTypes returns the signal types a portal accepts when its config
// lists none (a fresh slice on every call).
func DefaultSignalTypes() []string {
	return []string{
		"page_view",
		"pricing_page_visit",
		"demo_request",
		"content_download",
		"g2_intent",
		"bombora_surge",
	}
}

// Defaults applied by [Config.ApplyDefaults].
const (
	DefaultCRMReadInterval = time.Hour
	MinCRMReadInterval     = 5 * time.Minute
	DefaultScheduleCron    = "0 2 * * *"
	DefaultTimeZone        = "UTC"
	DefaultPropertyPrefix  = "sb_"
	DefaultGroupName       = "signalbridge_scores"
	DefaultGroupLabel      = "signalbridge Managed Scores"
	DefaultImportThreshold = 5000
	DefaultTaskDueIn       = 24 * time.Hour
)

// ApplyDefaults fills every unset optional field with its default. [Parse] calls it;
// call it yourself on a Config built in code before [Config.Validate].
func (c *Config) ApplyDefaults() {
	h := &c.HubSpot
	if h.APIVersion == "" {
		h.APIVersion = APIVersionV3
	}
	if h.WebhookSignatureVersion == "" {
		h.WebhookSignatureVersion = SignatureV3
	}
	if c.Sync.Accounts == "" {
		c.Sync.Accounts = AccountsUpdateOnly
	}
	if c.Sync.Contacts == "" {
		c.Sync.Contacts = ContactsDisabled
	}
	if c.Sync.CRMReadInterval.isZero() {
		c.Sync.CRMReadInterval = Duration{Duration: DefaultCRMReadInterval}
	}
	for i := range c.FieldMappings {
		def := StrategyUpdateIfEmpty
		if IsScoreSource(c.FieldMappings[i].Source) {
			def = StrategyOverwrite // score sync replaces scores on every run
		}
		for j := range c.FieldMappings[i].Targets {
			if t := &c.FieldMappings[i].Targets[j]; t.Strategy == "" {
				t.Strategy = def
			}
		}
	}
	for i := range c.Automations {
		for j := range c.Automations[i].Actions {
			t := c.Automations[i].Actions[j].Task
			if t == nil {
				continue
			}
			if t.Priority == "" {
				t.Priority = PriorityMedium
			}
			if t.Type == "" {
				t.Type = TaskTodo
			}
			if t.DueIn.isZero() {
				t.DueIn = Duration{Duration: DefaultTaskDueIn}
			}
		}
	}
	s := &c.ScoreSync
	if s.Schedule == "" {
		s.Schedule = DefaultScheduleCron
	}
	if s.TimeZone == "" {
		s.TimeZone = DefaultTimeZone
	}
	if s.PropertyPrefix == "" {
		s.PropertyPrefix = DefaultPropertyPrefix
	}
	if s.Group.Name == "" {
		s.Group.Name = DefaultGroupName
	}
	if s.Group.Label == "" {
		s.Group.Label = DefaultGroupLabel
	}
	if s.ImportThreshold == 0 {
		s.ImportThreshold = DefaultImportThreshold
	}
	if len(c.SignalTypes) == 0 {
		c.SignalTypes = DefaultSignalTypes()
	}
}

// SignalTypeAllowed reports whether ingest accepts signals of type t for this portal.
func (c *Config) SignalTypeAllowed(t string) bool {
	types := c.SignalTypes
	if len(types) == 0 {
		types = DefaultSignalTypes()
	}
	return slices.Contains(types, t)
}

// Automation returns the automation with the given name.
func (c *Config) Automation(name string) (Automation, bool) {
	for _, a := range c.Automations {
		if a.Name == name {
			return a, true
		}
	}
	return Automation{}, false
}

// Location returns the score-sync time zone (UTC if unset or unknown; Validate
// rejects unknown zones).
func (s ScoreSync) Location() *time.Location {
	if s.TimeZone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Duration is a time.Duration written as a Go duration string ("1h", "90m").
// A value that does not parse is kept (as written) so that Validate can report
// it with its field path instead of aborting the whole parse.
type Duration struct {
	time.Duration
	invalid string
}

// NewDuration returns d as a Duration.
func NewDuration(d time.Duration) Duration { return Duration{Duration: d} }

func (d Duration) isZero() bool { return d.Duration == 0 && d.invalid == "" }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s into a duration", n.Line, kindName(n.Kind))}}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		*d = Duration{invalid: n.Value}
		return nil
	}
	*d = Duration{Duration: v}
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) {
	if d.invalid != "" {
		return d.invalid, nil
	}
	return d.format(), nil
}

// format writes the duration without zero tails: "1h", "1h30m", "90s".
func (d Duration) format() string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText writes the duration as a Go duration string (JSON, logs).
func (d Duration) MarshalText() ([]byte, error) {
	if d.invalid != "" {
		return []byte(d.invalid), nil
	}
	return []byte(d.format()), nil
}

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration{Duration: v}
	return nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a non-scalar"
}
