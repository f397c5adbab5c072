package portal

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readDemo(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/demo-portal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseDemo(t *testing.T) {
	t.Parallel()
	cfg, err := Parse(readDemo(t))
	if err != nil {
		t.Fatalf("Parse(demo): %v", err)
	}
	if cfg.PortalID != "12345678" || cfg.Name != "Acme Demo" {
		t.Errorf("portal = %q %q", cfg.PortalID, cfg.Name)
	}
	wantHubSpot := HubSpot{
		Auth:                    Auth{Type: AuthPrivateApp, Secret: "HUBSPOT_TOKEN_ACME"},
		Tier:                    TierProfessional,
		APIVersion:              APIVersionV3,
		AppID:                   987654,
		WebhookSecret:           "HUBSPOT_APP_SECRET_ACME",
		WebhookSignatureVersion: SignatureV3,
	}
	if cfg.HubSpot != wantHubSpot {
		t.Errorf("hubspot = %+v\nwant %+v", cfg.HubSpot, wantHubSpot)
	}
	wantSync := Sync{Accounts: AccountsCreateAndUpdate, Contacts: ContactsUpdateOnly, CRMReadInterval: NewDuration(time.Hour)}
	if cfg.Sync != wantSync {
		t.Errorf("sync = %+v, want %+v", cfg.Sync, wantSync)
	}
	if len(cfg.FieldMappings) != 7 {
		t.Fatalf("%d field mappings, want 7", len(cfg.FieldMappings))
	}
	scoreMapping := cfg.FieldMappings[4]
	wantScoreMapping := FieldMapping{Source: "account.intent_score", Targets: []Target{
		{Object: ObjectCompany, Property: "hs_intent_score", Strategy: StrategyOverwrite}, // the default for scores
	}}
	if !reflect.DeepEqual(scoreMapping, wantScoreMapping) {
		t.Errorf("field_mappings[4] = %+v, want %+v", scoreMapping, wantScoreMapping)
	}
	fit := cfg.FieldMappings[2]
	wantFit := FieldMapping{Source: "account.fit_tier", Targets: []Target{
		{Object: ObjectCompany, Property: "sb_fit_tier", Strategy: StrategyOverwrite},
		{Object: ObjectCompany, Property: "icp_tier", Strategy: StrategyUpdateIfEmpty},
	}}
	if !reflect.DeepEqual(fit, wantFit) {
		t.Errorf("field_mappings[2] = %+v, want %+v", fit, wantFit)
	}
	if len(cfg.Automations) != 3 {
		t.Fatalf("%d automations, want 3", len(cfg.Automations))
	}
	a, ok := cfg.Automation("High intent → task")
	if !ok {
		t.Fatal("automation \"High intent → task\" not found")
	}
	wantWhen := When{SignalTypes: []string{"pricing_page_visit", "demo_request"}, MinStrength: StrengthHigh, Segments: []string{"enterprise"}}
	if !reflect.DeepEqual(a.When, wantWhen) {
		t.Errorf("when = %+v, want %+v", a.When, wantWhen)
	}
	if len(a.Actions) != 3 || a.Actions[0].Kind != ActionClaimAccount || a.Actions[0].OwnerID != "52001234" {
		t.Errorf("actions = %+v", a.Actions)
	}
	task := a.Actions[1].Task
	if task == nil || task.Priority != PriorityHigh || task.Type != TaskCall || task.DueIn.Duration != 24*time.Hour ||
		!strings.HasPrefix(task.Subject, "Follow up: high intent") {
		t.Errorf("task = %+v", task)
	}
	wantScore := ScoreSync{
		Enabled: true, Schedule: "0 2 * * *", TimeZone: "Europe/Berlin", PropertyPrefix: "sb_",
		Group:           PropertyGroup{Name: "signalbridge_scores", Label: "signalbridge Managed Scores"},
		ImportThreshold: 5000,
	}
	if cfg.ScoreSync != wantScore {
		t.Errorf("score_sync = %+v, want %+v", cfg.ScoreSync, wantScore)
	}
	if len(cfg.Ingest.APIKeys) != 2 || cfg.Ingest.APIKeys[0].Name != "web-analytics" {
		t.Errorf("api keys = %+v", cfg.Ingest.APIKeys)
	}
	if !reflect.DeepEqual(cfg.SignalTypes, DefaultSignalTypes()) {
		t.Errorf("signal types = %v", cfg.SignalTypes)
	}
	if l := cfg.Limits(); l.Burst != 190 || l.Daily != 650_000 {
		t.Errorf("limits = %+v", l)
	}
}

const minimalYAML = `portal_id: "42"
name: Minimal
hubspot:
  auth: { type: private_app, secret: HUBSPOT_TOKEN }
  tier: free
`

func TestParseMinimalAppliesDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(minimalYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		PortalID: "42",
		Name:     "Minimal",
		HubSpot: HubSpot{
			Auth: Auth{Type: AuthPrivateApp, Secret: "HUBSPOT_TOKEN"}, Tier: TierFree,
			APIVersion: APIVersionV3, WebhookSignatureVersion: SignatureV3,
		},
		Sync: Sync{Accounts: AccountsUpdateOnly, Contacts: ContactsDisabled, CRMReadInterval: NewDuration(time.Hour)},
		ScoreSync: ScoreSync{
			Schedule: DefaultScheduleCron, TimeZone: "UTC", PropertyPrefix: "sb_",
			Group:           PropertyGroup{Name: DefaultGroupName, Label: DefaultGroupLabel},
			ImportThreshold: 5000,
		},
		SignalTypes: DefaultSignalTypes(),
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Parse(minimal) =\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	cfg, err := Parse(readDemo(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(Marshal(demo)): %v\n%s", err, b)
	}
	if !reflect.DeepEqual(cfg, again) {
		t.Errorf("round trip changed the config:\n%+v\n%+v", cfg, again)
	}
}

// lineOf returns the 1-based line of the first line of doc containing marker.
func lineOf(t *testing.T, doc, marker string) int {
	t.Helper()
	for i, l := range strings.Split(doc, "\n") {
		if strings.Contains(l, marker) {
			return i + 1
		}
	}
	t.Fatalf("marker %q not in document", marker)
	return 0
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	const plainKey = "sbk_PLAINkeyPLAINkeyPLAINkeyPLAINkeyPLAINkeyPLA"
	hash := func(k string) string { return HashAPIKey(k) }
	cases := []struct {
		name string
		yaml string
		// want is the full text of one problem (Problem.String() without the line).
		want string
		// lineMarker, if set, finds the line the problem must carry.
		lineMarker string
	}{
		{
			name: "bad tier",
			yaml: strings.Replace(minimalYAML, "tier: free", "tier: gold", 1),
			want: `hubspot.tier: "gold" is not one of free, starter, professional, enterprise, api_addon`, lineMarker: "tier: gold",
		},
		{
			name: "missing tier",
			yaml: strings.Replace(minimalYAML, "  tier: free\n", "", 1),
			want: `hubspot.tier: required: one of free, starter, professional, enterprise, api_addon`, lineMarker: "hubspot:",
		},
		{
			name: "bad strategy",
			yaml: minimalYAML + `field_mappings:
  - source: account.industry
    targets: [ { object: company, property: industry } ]
  - source: account.employee_count
    targets: [ { object: company, property: numberofemployees, strategy: overwrite } ]
  - source: account.country
    targets:
      - object: company
        property: country
        strategy: replace
`,
			want: `field_mappings[2].targets[0].strategy: "replace" is not one of overwrite, update-if-empty`, lineMarker: "strategy: replace",
		},
		{
			name: "plain api key",
			yaml: minimalYAML + "ingest:\n  api_keys:\n    - { name: web, hash: " + plainKey + " }\n",
			want: `ingest.api_keys[0].hash: is not a hash; a plain API key must never be stored: put HashAPIKey(key) ("sha256:<64 hex digits>") here`,
		},
		{
			name: "malformed hash",
			yaml: minimalYAML + "ingest:\n  api_keys:\n    - { name: web, hash: \"sha256:ABC\" }\n",
			want: `ingest.api_keys[0].hash: must be "sha256:" followed by 64 lower-case hex digits`,
		},
		{
			name: "duplicate api key",
			yaml: minimalYAML + "ingest:\n  api_keys:\n    - { name: a, hash: \"" + hash("k1") + "\" }\n    - { name: b, hash: \"" + hash("k1") + "\" }\n",
			want: `ingest.api_keys[1].hash: same key as ingest.api_keys[0]`,
		},
		{
			name: "duplicate api key name",
			yaml: minimalYAML + "ingest:\n  api_keys:\n    - { name: a, hash: \"" + hash("k1") + "\" }\n    - { name: a, hash: \"" + hash("k2") + "\" }\n",
			want: `ingest.api_keys[1].name: "a" is already used by ingest.api_keys[0]`,
		},
		{
			name: "bad cron hour",
			yaml: minimalYAML + "score_sync:\n  schedule: \"0 25 * * *\"\n",
			want: `score_sync.schedule: cron "0 25 * * *": hour: 25 is out of range 0-23`, lineMarker: "schedule:",
		},
		{
			name: "cron with 6 fields",
			yaml: minimalYAML + "score_sync:\n  schedule: \"0 0 2 * * *\"\n",
			want: `score_sync.schedule: cron "0 0 2 * * *": want 5 fields (minute hour day-of-month month day-of-week), got 6`,
		},
		{
			name: "bad time zone",
			yaml: minimalYAML + "score_sync:\n  enabled: true\n  time_zone: Mars/Olympus_Mons\n",
			want: `score_sync.time_zone: "Mars/Olympus_Mons" is not a known IANA time zone`, lineMarker: "time_zone:",
		},
		{
			name: "local time zone",
			yaml: minimalYAML + "score_sync:\n  time_zone: Local\n",
			want: `score_sync.time_zone: "Local" depends on the machine; name an IANA time zone such as "Europe/Berlin"`,
		},
		{
			name: "unknown key with line",
			yaml: minimalYAML + "sync:\n  accounts: update-only\n  acounts: create-and-update\n",
			want: `sync.acounts: unknown field`, lineMarker: "acounts:",
		},
		{
			name: "unknown nested key in a list",
			yaml: minimalYAML + "field_mappings:\n  - source: account.industry\n    targets:\n      - object: company\n        property: industry\n        stratgy: overwrite\n",
			want: `field_mappings[0].targets[0].stratgy: unknown field`, lineMarker: "stratgy",
		},
		{
			name: "unknown top-level key",
			yaml: minimalYAML + "webhooks: true\n",
			want: `webhooks: unknown field`, lineMarker: "webhooks:",
		},
		{
			name: "missing portal_id",
			yaml: strings.Replace(minimalYAML, "portal_id: \"42\"\n", "", 1),
			want: `portal_id: required: the HubSpot portal id`,
		},
		{
			name: "non-digit portal id",
			yaml: strings.Replace(minimalYAML, `portal_id: "42"`, `portal_id: "acme"`, 1),
			want: `portal_id: "acme" must be the HubSpot portal id: digits only, no leading zero`, lineMarker: "portal_id",
		},
		{
			name: "leading zero portal id",
			yaml: strings.Replace(minimalYAML, `portal_id: "42"`, `portal_id: "042"`, 1),
			want: `portal_id: "042" must be the HubSpot portal id: digits only, no leading zero`,
		},
		{
			name: "portal_id twice",
			yaml: minimalYAML + "portal_id: \"43\"\n",
			want: `portal_id: duplicate key, first defined at line 1`, lineMarker: `"43"`,
		},
		{
			name: "missing name",
			yaml: strings.Replace(minimalYAML, "name: Minimal\n", "", 1),
			want: `name: required`,
		},
		{
			name: "duplicate automation names",
			yaml: minimalYAML + `automations:
  - name: Follow up
    actions: [ { kind: add_to_list, list_name: A } ]
  - name: Follow up # again
    actions: [ { kind: add_to_list, list_name: B } ]
`,
			want: `automations[1].name: "Follow up" is already used by automations[0]`, lineMarker: "# again",
		},
		{
			name: "token instead of secret name",
			yaml: strings.Replace(minimalYAML, "secret: HUBSPOT_TOKEN", "secret: pat-na1-11111111-2222-3333-4444-555555555555", 1),
			want: `hubspot.auth.secret: looks like a HubSpot private app token; give the NAME of the secret that holds it, never the token`,
		},
		{
			name: "uuid instead of secret name",
			yaml: strings.Replace(minimalYAML, "{ type: private_app, secret: HUBSPOT_TOKEN }", "{ type: service_key, secret: 11111111-2222-3333-4444-555555555555 }", 1),
			want: `hubspot.auth.secret: looks like a secret value; give the NAME of the secret that holds it, never the value`,
		},
		{
			name: "missing secret name",
			yaml: strings.Replace(minimalYAML, "{ type: private_app, secret: HUBSPOT_TOKEN }", "{ type: private_app }", 1),
			want: `hubspot.auth.secret: required: the name of the secret (environment variable or mounted file)`,
		},
		{
			name: "oauth without refresh token",
			yaml: strings.Replace(minimalYAML, "{ type: private_app, secret: HUBSPOT_TOKEN }",
				"{ type: oauth, client_id_secret: HS_CLIENT_ID, client_secret_secret: HS_CLIENT_SECRET }", 1),
			want: `hubspot.auth.refresh_token_secret: required: the name of the secret (environment variable or mounted file)`,
		},
		{
			name: "oauth field with private app",
			yaml: strings.Replace(minimalYAML, "secret: HUBSPOT_TOKEN }", "secret: HUBSPOT_TOKEN, client_id_secret: X }", 1),
			want: `hubspot.auth.client_id_secret: only valid for auth type oauth, not private_app`,
		},
		{
			name: "bad auth type",
			yaml: strings.Replace(minimalYAML, "type: private_app", "type: api_key", 1),
			want: `hubspot.auth.type: "api_key" is not one of private_app, service_key, oauth`,
		},
		{
			name: "bad api version",
			yaml: strings.Replace(minimalYAML, "tier: free", "tier: free\n  api_version: v4", 1),
			want: `hubspot.api_version: "v4" is not one of v3, 2026-03, 2026-09`,
		},
		{
			name: "bad signature version",
			yaml: strings.Replace(minimalYAML, "tier: free", "tier: free\n  webhook_signature_version: v9", 1),
			want: `hubspot.webhook_signature_version: "v9" is not one of v3, v2, v1`,
		},
		{
			name: "app id not a number",
			yaml: strings.Replace(minimalYAML, "tier: free", "tier: free\n  app_id: acme", 1),
			want: "hubspot.app_id: cannot unmarshal !!str `acme` into int64", lineMarker: "app_id",
		},
		{
			name: "scalar where a list belongs",
			yaml: minimalYAML + "field_mappings:\n  - source: account.industry\n    targets: company\n",
			want: "field_mappings[0].targets: cannot unmarshal !!str `company` into []portal.Target", lineMarker: "targets:",
		},
		{
			name: "bad contacts mode",
			yaml: minimalYAML + "sync:\n  contacts: two-way\n",
			want: `sync.contacts: "two-way" is not one of create-and-update, update-only, disabled`,
		},
		{
			name: "read interval too short",
			yaml: minimalYAML + "sync:\n  crm_read_interval: 1m\n",
			want: `sync.crm_read_interval: 1m0s is shorter than the minimum 5m0s`,
		},
		{
			name: "read interval not a duration",
			yaml: minimalYAML + "sync:\n  crm_read_interval: hourly\n",
			want: `sync.crm_read_interval: "hourly" is not a duration such as "30m" or "1h"`, lineMarker: "hourly",
		},
		{
			name:       "score kept only when empty",
			yaml:       minimalYAML + "field_mappings:\n  - source: account.intent_strength\n    targets: [ { object: company, property: my_strength, strategy: update-if-empty } ]\n",
			want:       `field_mappings[0].targets[0].strategy: "update-if-empty": account.intent_strength is written by score sync, which replaces the value on every run; use overwrite (the default for scores)`,
			lineMarker: "update-if-empty",
		},
		{
			name: "account field to contact property",
			yaml: minimalYAML + "field_mappings:\n  - source: account.industry\n    targets: [ { object: contact, property: industry } ]\n",
			want: `field_mappings[0].targets[0].object: an account field can only be written to company properties`,
		},
		{
			name: "bad source",
			yaml: minimalYAML + "field_mappings:\n  - source: deal.amount\n    targets: [ { object: company, property: amount } ]\n",
			want: `field_mappings[0].source: "deal.amount" must be "account.<field>" or "contact.<field>" (field: lower-case letters, digits, '_')`,
		},
		{
			name: "bad property name",
			yaml: minimalYAML + "field_mappings:\n  - source: account.industry\n    targets: [ { object: company, property: Industry Name } ]\n",
			want: `field_mappings[0].targets[0].property: "Industry Name" is not a HubSpot internal property name (lower-case letters, digits, '_', starting with a letter)`,
		},
		{
			name: "no targets",
			yaml: minimalYAML + "field_mappings:\n  - source: account.industry\n",
			want: `field_mappings[0].targets: at least one target is required`,
		},
		{
			name: "property written twice",
			yaml: minimalYAML + "field_mappings:\n  - source: account.industry\n    targets: [ { object: company, property: industry } ]\n  - source: account.sector\n    targets: [ { object: company, property: industry } ]\n",
			want: `field_mappings[1].targets[0]: company.industry is already written by field_mappings[0].targets[0]`,
		},
		{
			name: "source mapped twice",
			yaml: minimalYAML + "field_mappings:\n  - source: account.industry\n    targets: [ { object: company, property: industry } ]\n  - source: account.industry\n    targets: [ { object: company, property: sector } ]\n",
			want: `field_mappings[1].source: "account.industry" is already mapped by field_mappings[0]; list all its targets there`,
		},
		{
			name: "automation on unknown signal type",
			yaml: minimalYAML + "automations:\n  - name: X\n    when: { signal_types: [page_view, tweet] }\n    actions: [ { kind: add_to_list, list_name: L } ]\n",
			want: `automations[0].when.signal_types[1]: "tweet" is not one of the portal's signal_types`,
		},
		{
			name: "bad min strength",
			yaml: minimalYAML + "automations:\n  - name: X\n    when: { min_strength: extreme }\n    actions: [ { kind: add_to_list, list_name: L } ]\n",
			want: `automations[0].when.min_strength: "extreme" is not one of low, medium, high`,
		},
		{
			name: "automation without actions",
			yaml: minimalYAML + "automations:\n  - name: X\n    when: { min_strength: high }\n",
			want: `automations[0].actions: at least one action is required`,
		},
		{
			name: "list add without list name",
			yaml: minimalYAML + "automations:\n  - name: X\n    actions: [ { kind: add_to_list } ]\n",
			want: `automations[0].actions[0].list_name: required`,
		},
		{
			name: "bad action kind",
			yaml: minimalYAML + "automations:\n  - name: X\n    actions: [ { kind: send_email } ]\n",
			want: `automations[0].actions[0].kind: "send_email" is not one of import_company, import_contact, add_to_list, create_task, timeline_note, claim_account`,
		},
		{
			name: "bad task priority",
			yaml: minimalYAML + "automations:\n  - name: X\n    actions:\n      - kind: create_task\n        task: { subject: Call them, priority: URGENT }\n",
			want: `automations[0].actions[0].task.priority: "URGENT" is not one of LOW, MEDIUM, HIGH`,
		},
		{
			name: "task without subject",
			yaml: minimalYAML + "automations:\n  - name: X\n    actions:\n      - kind: create_task\n        task: { priority: HIGH }\n",
			want: `automations[0].actions[0].task.subject: required`,
		},
		{
			name: "create task without task",
			yaml: minimalYAML + "automations:\n  - name: X\n    actions: [ { kind: create_task } ]\n",
			want: `automations[0].actions[0].task: required for kind create_task`,
		},
		{
			name: "field for another kind",
			yaml: minimalYAML + "automations:\n  - name: X\n    actions:\n      - { kind: add_to_list, list_name: L }\n      - { kind: create_task, list_name: L, task: { subject: S } }\n",
			want: `automations[0].actions[1].list_name: only valid for kind add_to_list`,
		},
		{
			name: "import company in update-only mode",
			yaml: minimalYAML + "automations:\n  - name: X\n    actions: [ { kind: import_company } ]\n",
			want: `automations[0].actions[0].kind: import_company creates companies, but sync.accounts is "update-only"; set it to create-and-update`,
		},
		{
			name: "import contact with contacts disabled",
			yaml: minimalYAML + "automations:\n  - name: X\n    actions: [ { kind: import_contact } ]\n",
			want: `automations[0].actions[0].kind: import_contact creates contacts, but sync.contacts is "disabled"; set it to create-and-update`,
		},
		{
			name: "bad note template",
			yaml: minimalYAML + "automations:\n  - name: X\n    actions: [ { kind: timeline_note, note: \"Visited {{.Page\" } ]\n",
			want: `automations[0].actions[0].note: is not a valid template`,
		},
		{
			name: "claim without owner",
			yaml: minimalYAML + "automations:\n  - name: X\n    actions: [ { kind: claim_account, owner_id: \"jane\" } ]\n",
			want: `automations[0].actions[0].owner_id: "jane" must be a HubSpot owner id (digits)`,
		},
		{
			name: "bad property prefix",
			yaml: minimalYAML + "score_sync:\n  property_prefix: SB-\n",
			want: `score_sync.property_prefix: "SB-" must start a HubSpot property name: lower-case letters, digits, '_', starting with a letter, at most 30`,
		},
		{
			name: "negative import threshold",
			yaml: minimalYAML + "score_sync:\n  import_threshold: -1\n",
			want: `score_sync.import_threshold: -1 must be between 1 and 1048576`,
		},
		{
			name: "bad signal type",
			yaml: minimalYAML + "signal_types: [page_view, Page View]\n",
			want: `signal_types[1]: "Page View" must be lower-case letters, digits, '_', starting with a letter, at most 64`,
		},
		{
			name: "duplicate signal type",
			yaml: minimalYAML + "signal_types: [page_view, page_view]\n",
			want: `signal_types[1]: "page_view" is already listed at signal_types[0]`,
		},
		{
			name: "yaml syntax error",
			yaml: minimalYAML + "name: [unclosed\n",
			want: `YAML syntax:`,
		},
		{
			name: "two documents",
			yaml: minimalYAML + "---\n" + minimalYAML,
			want: `more than one YAML document; write one document per portal`, lineMarker: "---",
		},
		{
			name: "not a mapping",
			yaml: "- portal_id: 1\n",
			want: `the document must be a mapping (portal_id: ..., name: ..., ...)`,
		},
		{
			name: "empty document",
			yaml: "",
			want: `empty document`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with an error")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not *ValidationError: %v", err, err)
			}
			var found *Problem
			for i, p := range ve.Problems {
				s := p.Path + ": " + p.Message
				if p.Path == "" {
					s = p.Message
				}
				if strings.HasPrefix(s, tc.want) {
					found = &ve.Problems[i]
					break
				}
			}
			if found == nil {
				t.Fatalf("no problem %q in:\n%s", tc.want, strings.ReplaceAll(err.Error(), "; ", "\n"))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Error() lacks %q: %s", tc.want, err)
			}
			if tc.lineMarker != "" {
				want := lineOf(t, tc.yaml, tc.lineMarker)
				if found.Line != want {
					t.Errorf("problem %q has line %d, want %d", found, found.Line, want)
				}
				if !strings.Contains(found.String(), "(line ") {
					t.Errorf("problem text %q does not show the line", found)
				}
			}
			if strings.Contains(err.Error(), plainKey) {
				t.Errorf("error echoes the plain API key: %s", err)
			}
			if strings.Contains(err.Error(), "pat-na1") {
				t.Errorf("error echoes the token: %s", err)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	doc := `portal_id: acme
name: Everything wrong
hubspot:
  auth: { type: private_app, secret: HUBSPOT_TOKEN }
  tier: gold
  colour: blue
sync:
  accounts: create-only
field_mappings:
  - source: account.industry
    targets: [ { object: company, property: industry, strategy: replace } ]
score_sync:
  schedule: "61 * * * *"
  time_zone: Nowhere/Land
`
	_, err := Parse([]byte(doc))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not *ValidationError", err)
	}
	want := map[string]int{
		"portal_id":                             1,
		"hubspot.tier":                          5,
		"hubspot.colour":                        6,
		"sync.accounts":                         8,
		"field_mappings[0].targets[0].strategy": 11,
		"score_sync.schedule":                   13,
		"score_sync.time_zone":                  14,
	}
	got := map[string]int{}
	for _, p := range ve.Problems {
		got[p.Path] = p.Line
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems (path → line) = %v\nwant %v\n%s", got, want, err)
	}
	if !strings.HasPrefix(err.Error(), `invalid portal config "acme" (7 problems): `) {
		t.Errorf("Error() = %s", err)
	}
}

func TestValidateConfigBuiltInCode(t *testing.T) {
	t.Parallel()
	cfg := &Config{
		PortalID: "99",
		Name:     "Coded",
		HubSpot:  HubSpot{Auth: Auth{Type: AuthOAuth, ClientIDSecret: "A", ClientSecretSecret: "B", RefreshTokenSecret: "C"}, Tier: TierEnterprise},
	}
	if err := cfg.Validate(); err == nil {
		t.Fatal("Validate accepted a config without defaults (empty score_sync.schedule)")
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate after ApplyDefaults: %v", err)
	}
}

func TestSignalTypeAllowed(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(minimalYAML + "signal_types: [page_view, webinar_attended]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string]bool{"page_view": true, "webinar_attended": true, "demo_request": false, "": false, "PAGE_VIEW": false} {
		if got := cfg.SignalTypeAllowed(typ); got != want {
			t.Errorf("SignalTypeAllowed(%q) = %v, want %v", typ, got, want)
		}
	}
	var bare Config // no defaults applied: the default list applies
	if !bare.SignalTypeAllowed("bombora_surge") || bare.SignalTypeAllowed("webinar_attended") {
		t.Error("a config without signal_types must allow exactly the default types")
	}
}

func TestStrength(t *testing.T) {
	t.Parallel()
	cases := []struct {
		s, min Strength
		want   bool
	}{
		{StrengthHigh, StrengthHigh, true},
		{StrengthHigh, StrengthLow, true},
		{StrengthMedium, StrengthHigh, false},
		{StrengthLow, "", true},
		{"", StrengthLow, false},
		{"bogus", StrengthLow, false},
	}
	for _, c := range cases {
		if got := c.s.AtLeast(c.min); got != c.want {
			t.Errorf("%q.AtLeast(%q) = %v, want %v", c.s, c.min, got, c.want)
		}
	}
}
