package portal

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationFormat(t *testing.T) {
	t.Parallel()
	cases := map[time.Duration]string{
		time.Hour:                  "1h",
		24 * time.Hour:             "24h",
		90 * time.Minute:           "1h30m",
		5 * time.Minute:            "5m",
		90 * time.Second:           "1m30s",
		time.Hour + 30*time.Second: "1h0m30s",
		1500 * time.Millisecond:    "1.5s",
	}
	for d, want := range cases {
		b, err := json.Marshal(NewDuration(d))
		if err != nil || string(b) != `"`+want+`"` {
			t.Errorf("json(%v) = %s, %v; want %q", d, b, err, want)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back.Duration != d {
			t.Errorf("json round trip of %v = %v, %v", d, back.Duration, err)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Error("json accepted a bad duration")
	}
}

func TestScoreSources(t *testing.T) {
	t.Parallel()
	for source, want := range map[string]bool{
		"account.intent_score": true, "account.intent_strength": true, "account.intent_trend": true,
		"account.icp_fit_score": true, "account.icp_fit_grade": true,
		"account.industry": false, "contact.intent_score": false, "intent_score": false, "account.intent_scores": false,
	} {
		if got := IsScoreSource(source); got != want {
			t.Errorf("IsScoreSource(%q) = %v, want %v", source, got, want)
		}
	}
}

// "intent_score → my_existing_prop" needs no strategy: scores default to overwrite,
// other account fields keep update-if-empty.
func TestScoreMappingDefaultsToOverwrite(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(`portal_id: "1"
name: p
hubspot: { auth: { type: private_app, secret: T }, tier: free }
field_mappings:
  - source: account.intent_score
    targets: [ { object: company, property: my_existing_prop } ]
  - source: account.industry
    targets: [ { object: company, property: industry } ]
`))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.FieldMappings[0].Targets[0].Strategy; s != StrategyOverwrite {
		t.Errorf("score target strategy = %q, want overwrite", s)
	}
	if s := cfg.FieldMappings[1].Targets[0].Strategy; s != StrategyUpdateIfEmpty {
		t.Errorf("industry target strategy = %q, want update-if-empty", s)
	}
}
