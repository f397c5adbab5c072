package scoresync_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
)

// client is a plain HubSpot client of a sandbox portal, for set-up and checks.
func (h *harness) client(t *testing.T, p *tportal) *hubspot.Client {
	t.Helper()
	c, err := hubspot.New(hubspot.Config{BaseURL: h.hs.URL, PortalID: p.sb.ID(), Auth: hubspot.BearerToken(p.sb.Token()), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func createProperty(t *testing.T, c *hubspot.Client, name, typ, fieldType string, options ...string) {
	t.Helper()
	pc := hubspot.PropertyCreate{Name: name, Label: name, GroupName: "companyinformation", Type: typ, FieldType: fieldType}
	for i := 0; i < len(options); i += 2 {
		pc.Options = append(pc.Options, hubspot.OptionInput{Label: options[i], Value: options[i+1], DisplayOrder: i/2 + 1})
	}
	if _, err := c.CreateProperty(t.Context(), hubspot.Companies, pc); err != nil {
		t.Fatalf("create property %s: %v", name, err)
	}
}

// scoreGroup describes the properties of the managed group: "name type/fieldType label=value ...".
func scoreGroup(t *testing.T, c *hubspot.Client) []string {
	t.Helper()
	props, err := c.GetProperties(t.Context(), hubspot.Companies)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range props {
		if p.GroupName != "signalbridge_scores" || p.Archived {
			continue
		}
		d := p.Name + " " + p.Type + "/" + p.FieldType
		for _, o := range p.Options {
			d += " " + o.Label + "=" + o.Value
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// A portal maps two scores to properties it already has (the documented YAML: a
// field_mappings entry per score, no strategy needed): the runs write those properties,
// create exactly the managed properties of the three other scores (once), and never the
// managed properties of the mapped scores.
func TestCustomMappingWritesScoresToExistingProperties(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	const n = 30
	p := h.addPortal(t, n, `field_mappings:
  - source: account.intent_score
    targets: [ { object: company, property: crm_intent } ]
  - source: account.intent_strength
    targets: [ { object: company, property: crm_strength } ]`, hubspottest.PortalOptions{})
	c := h.client(t, p)
	createProperty(t, c, "crm_intent", hubspot.TypeNumber, hubspot.FieldNumber)
	// Matched by label (any case) or by internal value; an extra option does no harm.
	createProperty(t, c, "crm_strength", hubspot.TypeEnumeration, hubspot.FieldSelect,
		"very high", "vh", "High", "h", "Medium", "m", "Low", "l", "None", "n", "Unknown", "u")
	svc := h.start(t, instanceOptions{})
	t0 := h.clock.Now().Add(-time.Hour)
	want, batch := p.scoreAll(n, 0, t0)
	h.publish(t, p.id, batch...)

	run := svc.sync(t, p.id, auto)
	if run.GetState() != succeeded || run.GetAccountsConfirmed() != n {
		t.Fatalf("first run: %s", summary(run))
	}
	wantGroup := []string{
		"sb_icp_fit_grade enumeration/select A=a B=b C=c D=d —=none",
		"sb_icp_fit_score number/number",
		"sb_intent_trend enumeration/select Surging=surging Heating=heating Neutral=neutral Cooling=cooling New=new None=none",
	}
	if got := scoreGroup(t, c); !slices.Equal(got, wantGroup) {
		t.Fatalf("managed properties:\n got %q\nwant %q", got, wantGroup)
	}
	strength := map[int32]string{1: "n", 2: "l", 3: "m", 4: "h", 5: "vh"}
	check := func(label string) {
		t.Helper()
		for i := range n {
			props, _ := p.sb.Object(hubspottest.Companies, p.companies[i])
			w := want[i]
			if got, wi := props["crm_intent"], fmt.Sprint(w.intent); got != wi {
				t.Fatalf("%s: company %d crm_intent %q, want %q", label, i, got, wi)
			}
			if got := props["crm_strength"]; got != strength[int32(w.strength)] {
				t.Fatalf("%s: company %d crm_strength %q, want %q", label, i, got, strength[int32(w.strength)])
			}
			if props["sb_intent_score"] != "" || props["sb_intent_strength"] != "" {
				t.Fatalf("%s: company %d has managed values of mapped scores: %v", label, i, props)
			}
			parts := strings.Split(expected(w), "|")
			if props["sb_intent_trend"] != parts[2] || props["sb_icp_fit_score"] != parts[3] || props["sb_icp_fit_grade"] != parts[4] {
				t.Fatalf("%s: company %d managed values %v, want %v", label, i, props, parts)
			}
		}
	}
	check("first run")

	// A second run creates nothing and sends only what changed.
	before := p.sb.Stats()
	t1 := t0.Add(time.Minute)
	want[4] = scoreFor(p.domain(4), 4, 1, t1)
	h.publish(t, p.id, want[4])
	run2 := svc.sync(t, p.id, auto)
	if run2.GetState() != succeeded || run2.GetAccountsSent() != 1 {
		t.Fatalf("second run: %s", summary(run2))
	}
	if got := postCount(p.sb.Stats(), "/crm/v3/properties") - postCount(before, "/crm/v3/properties"); got != 0 {
		t.Fatalf("the second run's setup created %d things", got)
	}
	check("second run")
}

// A mapped property without every option of its score is refused before anything is
// written; the run's record names the property and the missing options.
func TestCustomMappingMissingAnOptionIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	p := h.addPortal(t, 5, `field_mappings:
  - source: account.intent_trend
    targets: [ { object: company, property: crm_trend } ]`, hubspottest.PortalOptions{})
	c := h.client(t, p)
	createProperty(t, c, "crm_trend", hubspot.TypeEnumeration, hubspot.FieldRadio,
		"Surging", "surging", "Heating", "heating", "Neutral", "neutral", "New", "new", "None", "none")
	svc := h.start(t, instanceOptions{})
	var batch []score
	for i := range 5 {
		batch = append(batch, scoreFor(p.domain(i), i, 0, h.clock.Now().Add(-time.Hour)))
	}
	h.publish(t, p.id, batch...)
	run := svc.sync(t, p.id, auto)
	if run.GetState() != failed || run.GetAccountsSent() != 0 {
		t.Fatalf("%s", summary(run))
	}
	for _, w := range []string{`company property "crm_trend"`, `options missing: "Cooling"`} {
		if !strings.Contains(run.GetMessage(), w) {
			t.Errorf("message %q does not say %q", run.GetMessage(), w)
		}
	}
	if got := p.sb.Stats().BatchInputs[batchRoute]; got != 0 {
		t.Errorf("%d records written", got)
	}
}
