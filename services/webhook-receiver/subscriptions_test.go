package webhookrx_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/portal"
	webhookrx "github.com/signalbridge/signalbridge/services/webhook-receiver"
)

const devKey = "dev-api-key-for-tests"

func mustParse(t *testing.T, y []byte) *portal.Config {
	t.Helper()
	pc, err := portal.Parse(y)
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	return pc
}

// portalWithMappings is a portal of app whose field mappings write the given
// contact properties (and one company property, which needs no webhook).
func portalWithMappings(t *testing.T, id string, app int64, contactProps ...string) *portal.Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "portal_id: %q\nname: p\nhubspot:\n  auth: { type: private_app, secret: T }\n  tier: starter\n  app_id: %d\n  webhook_secret: HS_APP_SECRET\nfield_mappings:\n", id, app)
	b.WriteString("  - source: account.industry\n    targets: [ { object: company, property: industry } ]\n")
	for i, p := range contactProps {
		fmt.Fprintf(&b, "  - source: contact.f%d\n    targets: [ { object: contact, property: %s } ]\n", i, p)
	}
	return mustParse(t, []byte(b.String()))
}

func subscriptionsOf(t *testing.T, api *webhookrx.SubscriptionsClient, app int64) (active, paused []webhookrx.Subscription) {
	t.Helper()
	subs, err := api.ListSubscriptions(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		if s.Active {
			active = append(active, s.Subscription)
		} else {
			paused = append(paused, s.Subscription)
		}
	}
	sortSubs := func(s []webhookrx.Subscription) {
		slices.SortFunc(s, func(a, b webhookrx.Subscription) int { return strings.Compare(a.String(), b.String()) })
	}
	sortSubs(active)
	sortSubs(paused)
	return active, paused
}

func TestDesiredSubscriptions(t *testing.T) {
	t.Parallel()
	got := webhookrx.DesiredSubscriptions(portalWithMappings(t, "1", 5, "jobtitle", "phone"), portalWithMappings(t, "2", 5, "phone", "lifecyclestage"))
	has := func(eventType, prop string) bool {
		return slices.Contains(got, webhookrx.Subscription{EventType: eventType, PropertyName: prop})
	}
	for _, want := range []struct{ eventType, prop string }{
		{"contact.creation", ""}, {"contact.deletion", ""}, {"contact.merge", ""}, {"contact.privacyDeletion", ""},
		{"contact.associationChange", ""}, {"contact.restore", ""},
		{"contact.propertyChange", "email"}, {"contact.propertyChange", "jobtitle"}, {"contact.propertyChange", "phone"}, {"contact.propertyChange", "lifecyclestage"},
		{"company.creation", ""}, {"company.deletion", ""}, {"company.merge", ""}, {"company.associationChange", ""},
		{"company.propertyChange", "domain"}, {"company.propertyChange", "website"}, {"company.propertyChange", "hs_additional_domains"},
		{"company.propertyChange", "name"}, {"company.propertyChange", "hubspot_owner_id"},
		{"deal.creation", ""}, {"deal.deletion", ""}, {"deal.associationChange", ""},
		{"deal.propertyChange", "dealstage"}, {"deal.propertyChange", "pipeline"}, {"deal.propertyChange", "amount"},
	} {
		if !has(want.eventType, want.prop) {
			t.Errorf("missing %s %s", want.eventType, want.prop)
		}
	}
	if has("company.propertyChange", "industry") {
		t.Error("a mapped company property got a webhook; only contact mappings sync both ways")
	}
	if has("company.privacyDeletion", "") {
		t.Error("company.privacyDeletion is not a HubSpot event type")
	}
	if !slices.IsSortedFunc(got, func(a, b webhookrx.Subscription) int {
		return strings.Compare(a.EventType+"\x00"+a.PropertyName, b.EventType+"\x00"+b.PropertyName)
	}) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("not sorted and unique: %v", got)
	}
}

func TestEnsureSubscriptionsAgainstTheSandbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb := hubspottest.NewTest(t, hubspottest.Options{})
	app := sb.AddApp(hubspottest.App{ClientSecret: appSecret, DeveloperAPIKey: devKey})
	api, err := webhookrx.NewSubscriptionsClient(webhookrx.SubscriptionsConfig{BaseURL: sb.URL, DeveloperAPIKey: devKey})
	if err != nil {
		t.Fatal(err)
	}
	// What someone set up by hand before: a paused subscription we need, an
	// active one nobody needs, and one of an object we do not manage.
	for _, pre := range []struct {
		s      webhookrx.Subscription
		active bool
	}{
		{webhookrx.Subscription{EventType: "company.creation"}, false},
		{webhookrx.Subscription{EventType: "contact.propertyChange", PropertyName: "fax"}, true},
		{webhookrx.Subscription{EventType: "ticket.creation"}, true},
	} {
		if _, err := api.CreateSubscription(ctx, app, pre.s, pre.active); err != nil {
			t.Fatal(err)
		}
	}
	cfgA := portalWithMappings(t, "1", app, "jobtitle")
	cfgB := portalWithMappings(t, "2", app, "phone")
	desired := webhookrx.DesiredSubscriptions(cfgA, cfgB)

	rep, err := webhookrx.EnsureSubscriptions(ctx, api, app, cfgA, cfgB)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Created) != len(desired)-1 || len(rep.Activated) != 1 || rep.Activated[0].EventType != "company.creation" {
		t.Fatalf("first run: created %d (want %d), activated %v", len(rep.Created), len(desired)-1, rep.Activated)
	}
	if len(rep.Deactivated) != 1 || rep.Deactivated[0] != (webhookrx.Subscription{EventType: "contact.propertyChange", PropertyName: "fax"}) {
		t.Fatalf("first run paused %v, want only contact.propertyChange[fax]", rep.Deactivated)
	}
	active, paused := subscriptionsOf(t, api, app)
	wantActive := append(slices.Clone(desired), webhookrx.Subscription{EventType: "ticket.creation"})
	slices.SortFunc(wantActive, func(a, b webhookrx.Subscription) int { return strings.Compare(a.String(), b.String()) })
	if !slices.Equal(active, wantActive) {
		t.Fatalf("active subscriptions after the first run:\n got %v\nwant %v", active, wantActive)
	}
	if len(paused) != 1 || paused[0].PropertyName != "fax" {
		t.Fatalf("paused %v", paused)
	}

	rep, err = webhookrx.EnsureSubscriptions(ctx, api, app, cfgA, cfgB)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed() || rep.Unchanged != len(desired) {
		t.Fatalf("second run is not a no-op: %+v", rep)
	}

	// A portal drops its mapping: its property's subscription is paused.
	rep, err = webhookrx.EnsureSubscriptions(ctx, api, app, cfgA, portalWithMappings(t, "2", app))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deactivated) != 1 || rep.Deactivated[0].PropertyName != "phone" || len(rep.Created) != 0 {
		t.Fatalf("after dropping a mapping: %+v", rep)
	}
}

func TestEnsureSubscriptionsErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb := hubspottest.NewTest(t, hubspottest.Options{})
	app := sb.AddApp(hubspottest.App{ClientSecret: appSecret, DeveloperAPIKey: devKey})
	wrongKey, err := webhookrx.NewSubscriptionsClient(webhookrx.SubscriptionsConfig{BaseURL: sb.URL, DeveloperAPIKey: "wrong-key-1234"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = webhookrx.EnsureSubscriptions(ctx, wrongKey, app, portalWithMappings(t, "1", app))
	var apiErr *webhookrx.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("wrong developer key: %v, want a 401 APIError", err)
	}
	if strings.Contains(err.Error(), "wrong-key-1234") {
		t.Fatalf("the error shows the developer key: %v", err)
	}
	good, _ := webhookrx.NewSubscriptionsClient(webhookrx.SubscriptionsConfig{BaseURL: sb.URL, DeveloperAPIKey: devKey})
	if _, err := webhookrx.EnsureSubscriptions(ctx, good, app, portalWithMappings(t, "1", app+1)); err == nil || !strings.Contains(err.Error(), "set up for app") {
		t.Fatalf("portal of another app: %v", err)
	}
	if _, err := webhookrx.EnsureSubscriptions(ctx, good, 987654321, portalWithMappings(t, "1", 987654321)); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("unknown app: %v, want a 404 APIError", err)
	}
}

// portalMap is a fixed set of portal configs.
type portalMap map[string]*portal.Config

func (m portalMap) Get(id string) (*portal.Config, bool) { c, ok := m[id]; return c, ok }
func (m portalMap) Portals() []string {
	var ids []string
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func TestEnsureAllSubscriptionsGroupsPortalsByApp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb := hubspottest.NewTest(t, hubspottest.Options{})
	app1 := sb.AddApp(hubspottest.App{ClientSecret: "one"})
	app2 := sb.AddApp(hubspottest.App{ClientSecret: "two"})
	api, _ := webhookrx.NewSubscriptionsClient(webhookrx.SubscriptionsConfig{BaseURL: sb.URL})
	portals := portalMap{
		"1": portalWithMappings(t, "1", app1, "jobtitle"),
		"2": portalWithMappings(t, "2", app1, "phone"),
		"3": portalWithMappings(t, "3", app2, "mobilephone"),
		"4": mustParse(t, portalYAML("4", 0, "", "")), // no app: skipped
	}
	reports, err := webhookrx.EnsureAllSubscriptions(ctx, api, portals)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 2 {
		t.Fatalf("reports for %d apps, want 2", len(reports))
	}
	props := func(app int64) []string {
		active, _ := subscriptionsOf(t, api, app)
		var out []string
		for _, s := range active {
			if s.EventType == "contact.propertyChange" {
				out = append(out, s.PropertyName)
			}
		}
		return out
	}
	if got := props(app1); !slices.Equal(got, []string{"email", "jobtitle", "phone"}) {
		t.Errorf("app 1 contact properties %v", got)
	}
	if got := props(app2); !slices.Equal(got, []string{"email", "mobilephone"}) {
		t.Errorf("app 2 contact properties %v", got)
	}
}
