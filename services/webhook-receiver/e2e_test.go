package webhookrx_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	webhookrx "github.com/signalbridge/signalbridge/services/webhook-receiver"
)

// TestSandboxDeliveriesLandOnTheStream runs HubSpot's side with the sandbox:
// subscriptions are ensured through its management API, CRM changes (a UI
// edit, an API write of our own app, a deletion) become signed webhook
// deliveries to the receiver, and their events land on the stream. Then NATS
// goes down while a change is delivered: the sandbox gets 503s, retries on
// its own schedule, and after the restart the event is stored exactly once.
func TestSandboxDeliveriesLandOnTheStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb := hubspottest.NewTest(t, hubspottest.Options{
		WebhookRetryBase: 100 * time.Millisecond, WebhookFlushInterval: 10 * time.Millisecond, DisableRateLimits: true,
	})
	const app int64 = 777001
	p := sb.AddPortal(hubspottest.PortalOptions{PrivateAppID: app, Tier: "professional"})
	pid := strconv.FormatInt(p.ID(), 10)

	e := newEnv(t, mustParse(t, portalYAML(pid, app, "HS_APP_SECRET", "v3")))
	s := e.serve(t, nil, time.Now) // the sandbox signs with the real clock
	sb.AddApp(hubspottest.App{ID: app, ClientSecret: appSecret, DeveloperAPIKey: devKey, TargetURL: s.base + webhookrx.DefaultPath})

	api, err := webhookrx.NewSubscriptionsClient(webhookrx.SubscriptionsConfig{BaseURL: sb.URL, DeveloperAPIKey: devKey})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := e.portals.Get(pid)
	if _, err := webhookrx.EnsureSubscriptions(ctx, api, app, cfg); err != nil {
		t.Fatal(err)
	}

	contact := p.SeedContacts(map[string]string{"email": "ana@acme.com", "jobtitle": "Engineer"})[0]
	if err := p.UIEdit(hubspottest.Contacts, contact, map[string]string{"jobtitle": "CTO", "phone": "+1 555"}); err != nil {
		t.Fatal(err)
	}
	client, err := hubspot.New(hubspot.Config{BaseURL: sb.URL, PortalID: p.ID(), Auth: hubspot.BearerToken(p.Token())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Update(ctx, hubspot.Contacts, contact, "", map[string]string{"jobtitle": "CEO"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two contact events on the stream", 10*time.Second, func() bool { return len(e.streamMsgs(t)) >= 2 })
	msgs := e.streamMsgs(t)
	if len(msgs) != 2 {
		t.Fatalf("stream holds %d messages, want 2 (phone is not subscribed)", len(msgs))
	}
	for i, want := range []struct {
		value, source string
		echo          bool
	}{{"CTO", "CRM_UI", false}, {"CEO", "INTEGRATION", true}} {
		m := msgs[i]
		if m.Subject != "hubspot.v1."+pid+".contact.propertyChange" {
			t.Errorf("msg %d subject %q", i, m.Subject)
		}
		got := decodeEvent(t, m.Data)
		if got.PropertyName != "jobtitle" || got.PropertyValue != want.value || got.ChangeSource != want.source || got.Echo != want.echo ||
			strconv.FormatInt(got.ObjectId, 10) != contact || m.Header.Get("Nats-Msg-Id") != fmt.Sprintf("hs:%s:%d", pid, got.EventId) {
			t.Errorf("msg %d: %+v", i, got)
		}
	}

	// NATS down while HubSpot delivers a deletion.
	e.srv.Stop()
	if err := client.Archive(ctx, hubspot.Contacts, contact); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a refused delivery", 10*time.Second, func() bool { return sb.AppStats(app).Failures > 0 })
	e.srv.Restart(t)
	waitFor(t, "the retried deletion on the stream", 30*time.Second, func() bool { return len(e.streamMsgs(t)) >= 3 })
	waitFor(t, "the sandbox to settle", 10*time.Second, func() bool { return sb.AppStats(app).Pending == 0 })
	msgs = e.streamMsgs(t)
	if len(msgs) != 3 || msgs[2].Subject != "hubspot.v1."+pid+".contact.deletion" {
		t.Fatalf("after the outage the stream holds %d messages (last %q), want 3 ending in the deletion", len(msgs), msgs[len(msgs)-1].Subject)
	}
	st := sb.AppStats(app)
	if st.EventsDropped != 0 || st.Retries == 0 || st.EventsDelivered != 3 {
		t.Fatalf("sandbox delivery stats %+v: want 3 events delivered after retries, none dropped", st)
	}
	if got := s.counter(t, "signalbridge.webhook.requests.rejected", attributeReason("unavailable")); got == 0 {
		t.Errorf("no 503 counted during the outage")
	}
}
