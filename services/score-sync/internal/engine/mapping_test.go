package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	scoresv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scores/v1"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/engine"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

func sandbox(t *testing.T) (*hubspottest.Portal, *hubspot.Client) {
	t.Helper()
	srv := hubspottest.NewTest(t, hubspottest.Options{})
	p := srv.AddPortal(hubspottest.PortalOptions{Tier: "enterprise"})
	c, err := hubspot.New(hubspot.Config{BaseURL: srv.URL, PortalID: p.ID(), Auth: hubspot.BearerToken(p.Token()), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

func config(t *testing.T, mappings string) *portal.Config {
	t.Helper()
	cfg, err := portal.Parse([]byte(`portal_id: "123"
name: test
hubspot: { auth: { type: private_app, secret: T }, tier: enterprise }
score_sync: { enabled: true }
` + mappings))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestSetupCreatesManagedPropertiesExactlyAndOnlyOnce(t *testing.T) {
	t.Parallel()
	p, c := sandbox(t)
	ctx := t.Context()
	cfg := config(t, "")
	first, err := engine.Setup(ctx, c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !first.GroupCreated || len(first.PropertiesCreated) != 5 {
		t.Fatalf("first setup created group=%v properties=%v", first.GroupCreated, first.PropertiesCreated)
	}
	groups, err := c.GetGroups(ctx, hubspot.Companies)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(groups, func(g hubspot.PropertyGroup) bool {
		return g.Name == "signalbridge_scores" && g.Label == "signalbridge Managed Scores"
	}) {
		t.Fatalf("group missing: %+v", groups)
	}
	want := map[string]string{
		"sb_intent_score":    "number/number",
		"sb_intent_strength": "enumeration/select Very High=very_high High=high Medium=medium Low=low None=none",
		"sb_intent_trend":    "enumeration/select Surging=surging Heating=heating Neutral=neutral Cooling=cooling New=new None=none",
		"sb_icp_fit_score":   "number/number",
		"sb_icp_fit_grade":   "enumeration/select A=a B=b C=c D=d —=none",
	}
	props, err := c.GetProperties(ctx, hubspot.Companies)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, pr := range props {
		if pr.GroupName != "signalbridge_scores" {
			continue
		}
		desc := pr.Type + "/" + pr.FieldType
		for _, o := range pr.Options {
			desc += " " + o.Label + "=" + o.Value
		}
		got[pr.Name] = desc
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("properties in the group:\n got %v\nwant %v", got, want)
	}

	before := p.Stats()
	second, err := engine.Setup(ctx, c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	after := p.Stats()
	if second.GroupCreated || len(second.PropertiesCreated) != 0 || second.Calls != 2 {
		t.Fatalf("second setup: %+v", second)
	}
	for route, n := range after.Requests {
		if strings.HasPrefix(route, "POST") && n != before.Requests[route] {
			t.Errorf("second setup sent %s (%d → %d)", route, before.Requests[route], n)
		}
	}
	if second.Mapping.Fingerprint != first.Mapping.Fingerprint {
		t.Fatal("fingerprint changed between identical setups")
	}
	v := store.Values{IntentScore: 7346, ICPFitScore: 5000, IntentStrength: scoresv1.IntentStrength_INTENT_STRENGTH_VERY_HIGH,
		IntentTrend: scoresv1.IntentTrend_INTENT_TREND_UNSPECIFIED, ICPFitGrade: scoresv1.FitGrade_FIT_GRADE_NONE}
	if got := fmt.Sprint(second.Mapping.Properties(v)); got != "map[sb_icp_fit_grade:none sb_icp_fit_score:50 sb_intent_score:73.46 sb_intent_strength:very_high sb_intent_trend:none]" {
		t.Fatalf("rendered %s", got)
	}
}

func create(t *testing.T, c *hubspot.Client, pc hubspot.PropertyCreate) {
	t.Helper()
	pc.Label = pc.Name
	pc.GroupName = "companyinformation"
	if _, err := c.CreateProperty(context.Background(), hubspot.Companies, pc); err != nil {
		t.Fatalf("create %s: %v", pc.Name, err)
	}
}

func opts(pairs ...string) []hubspot.OptionInput {
	var out []hubspot.OptionInput
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, hubspot.OptionInput{Label: pairs[i], Value: pairs[i+1]})
	}
	return out
}

func mapping(field, property, strategy string) string {
	return fmt.Sprintf("  - source: account.%s\n    targets:\n      - { object: company, property: %s, strategy: %s }\n", field, property, strategy)
}

func TestSetupRefusesIncompatibleCustomMappingsWithTheReason(t *testing.T) {
	t.Parallel()
	_, c := sandbox(t)
	create(t, c, hubspot.PropertyCreate{Name: "legacy_score", Type: hubspot.TypeString, FieldType: hubspot.FieldText})
	create(t, c, hubspot.PropertyCreate{Name: "legacy_strength", Type: hubspot.TypeEnumeration, FieldType: hubspot.FieldSelect,
		Options: opts("High", "h", "Medium", "m", "Low", "l")})
	create(t, c, hubspot.PropertyCreate{Name: "legacy_trend", Type: hubspot.TypeEnumeration, FieldType: hubspot.FieldCheckbox,
		Options: opts("Surging", "surging", "Heating", "heating", "Neutral", "neutral", "Cooling", "cooling", "New", "new", "None", "none")})
	cases := []struct {
		name, mappings, property string
		want                     []string
		// edit changes the parsed config (for what a YAML document cannot say).
		edit func(*portal.Config)
	}{
		{"number score to a text property", mapping("intent_score", "legacy_score", "overwrite"), "legacy_score",
			[]string{`type is "string"`, "needs a number property"}, nil},
		{"select missing options", mapping("intent_strength", "legacy_strength", "overwrite"), "legacy_strength",
			[]string{`options missing: "Very High", "None"`, `"High", "Medium", "Low"`}, nil},
		{"multi-choice checkbox", mapping("intent_trend", "legacy_trend", "overwrite"), "legacy_trend",
			[]string{`field type is "checkbox"`, "single choice"}, nil},
		{"property that does not exist", mapping("icp_fit_grade", "no_such_property", "overwrite"), "no_such_property",
			[]string{"does not exist on companies"}, nil},
		{"read-only calculated property", mapping("icp_fit_score", "num_associated_deals", "overwrite"), "num_associated_deals",
			[]string{"read-only"}, nil},
		// portal.Parse refuses it in YAML; a config built in code is still checked.
		{"update-if-empty strategy", mapping("intent_score", "legacy_score", "overwrite"), "legacy_score",
			[]string{`strategy "update-if-empty"`, `must be "overwrite"`},
			func(c *portal.Config) { c.FieldMappings[0].Targets[0].Strategy = portal.StrategyUpdateIfEmpty }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(t, "field_mappings:\n"+tc.mappings)
			if tc.edit != nil {
				tc.edit(cfg)
			}
			_, err := engine.Setup(t.Context(), c, cfg)
			if !errors.Is(err, engine.ErrIncompatibleMapping) {
				t.Fatalf("err = %v, want ErrIncompatibleMapping", err)
			}
			var me *engine.MappingError
			if !errors.As(err, &me) || me.Property != tc.property {
				t.Fatalf("err %v names property %q, want %q", err, me.Property, tc.property)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// Several problems are reported together.
	_, err := engine.Setup(t.Context(), c, config(t, "field_mappings:\n"+mapping("intent_score", "legacy_score", "overwrite")+
		mapping("intent_strength", "legacy_strength", "overwrite")))
	if n := strings.Count(err.Error(), "→ company property"); n != 2 {
		t.Fatalf("want both problems in %q", err)
	}
}

func TestSetupUsesCompatibleCustomPropertiesByLabelOrValue(t *testing.T) {
	t.Parallel()
	p, c := sandbox(t)
	create(t, c, hubspot.PropertyCreate{Name: "crm_strength", Type: hubspot.TypeEnumeration, FieldType: hubspot.FieldRadio,
		Options: opts("very high", "VH", "High", "H", "Medium", "M", "Low", "L", "-", "N", "Extra", "X")})
	create(t, c, hubspot.PropertyCreate{Name: "crm_grade_text", Type: hubspot.TypeString, FieldType: hubspot.FieldText})
	create(t, c, hubspot.PropertyCreate{Name: "crm_score", Type: hubspot.TypeNumber, FieldType: hubspot.FieldNumber})
	cfg := config(t, "field_mappings:\n"+mapping("intent_strength", "crm_strength", "overwrite")+
		mapping("icp_fit_grade", "crm_grade_text", "overwrite")+
		"  - source: account.intent_score\n    targets:\n      - { object: company, property: crm_score, strategy: overwrite }\n      - { object: company, property: crm_score_copy, strategy: overwrite }\n")
	create(t, c, hubspot.PropertyCreate{Name: "crm_score_copy", Type: hubspot.TypeNumber, FieldType: hubspot.FieldNumber})
	res, err := engine.Setup(t.Context(), c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Only the unmapped scores get managed properties.
	if slices.Sort(res.PropertiesCreated); fmt.Sprint(res.PropertiesCreated) != "[sb_icp_fit_score sb_intent_trend]" {
		t.Fatalf("created %v", res.PropertiesCreated)
	}
	v := store.Values{IntentScore: 1, IntentStrength: scoresv1.IntentStrength_INTENT_STRENGTH_NONE, ICPFitGrade: scoresv1.FitGrade_FIT_GRADE_B}
	got := res.Mapping.Properties(v)
	want := map[string]string{"crm_strength": "N", "crm_grade_text": "B", "crm_score": "0.01", "crm_score_copy": "0.01",
		"sb_intent_trend": "none", "sb_icp_fit_score": "0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rendered %v, want %v", got, want)
	}
	v.IntentStrength = scoresv1.IntentStrength_INTENT_STRENGTH_VERY_HIGH
	if got := res.Mapping.Properties(v)["crm_strength"]; got != "VH" {
		t.Fatalf("very high rendered as %q", got)
	}
	// The rendered values are accepted by HubSpot.
	ids := p.SeedCompanies(map[string]string{"name": "x", "domain": "x.com"})
	if _, err := c.Update(t.Context(), hubspot.Companies, ids[0], "", res.Mapping.Properties(v)); err != nil {
		t.Fatal(err)
	}
}

// The five scores of the engine are the ones libs/portal knows as score sources.
func TestFieldsAreThePortalScoreFields(t *testing.T) {
	t.Parallel()
	var names []string
	for _, f := range engine.Fields {
		names = append(names, f.String())
	}
	if fmt.Sprint(names) != fmt.Sprint(portal.ScoreFields()) {
		t.Fatalf("engine fields %v, portal.ScoreFields %v", names, portal.ScoreFields())
	}
}

// The documented way to send a score to an existing property: a field_mappings entry
// without a strategy (scores default to overwrite).
func TestSetupMapsAScoreToAnExistingPropertyFromYAML(t *testing.T) {
	t.Parallel()
	p, c := sandbox(t)
	create(t, c, hubspot.PropertyCreate{Name: "my_existing_prop", Type: hubspot.TypeNumber, FieldType: hubspot.FieldNumber})
	cfg := config(t, `field_mappings:
  - source: account.intent_score
    targets: [ { object: company, property: my_existing_prop } ]
`)
	res, err := engine.Setup(t.Context(), c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(res.PropertiesCreated, "sb_intent_score") || len(res.PropertiesCreated) != 4 {
		t.Fatalf("created %v, want the four other managed properties", res.PropertiesCreated)
	}
	v := store.Values{IntentScore: 8750}
	props := res.Mapping.Properties(v)
	if props["my_existing_prop"] != "87.5" {
		t.Fatalf("rendered %v", props)
	}
	if _, ok := props["sb_intent_score"]; ok {
		t.Fatalf("the managed property is still written: %v", props)
	}
	ids := p.SeedCompanies(map[string]string{"name": "x", "domain": "x.com"})
	if _, err := c.Update(t.Context(), hubspot.Companies, ids[0], "", props); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Object(hubspottest.Companies, ids[0]); got["my_existing_prop"] != "87.5" {
		t.Fatalf("HubSpot holds %q", got["my_existing_prop"])
	}
}
