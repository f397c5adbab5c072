package hubspot_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
)

// TestWebhooks_SandboxDeliveriesVerify receives the sandbox's signed
// deliveries: its signer and this package's verifier are independent
// implementations of HubSpot's scheme.
func TestWebhooks_SandboxDeliveriesVerify(t *testing.T) {
	t.Parallel()
	const secret = "app-client-secret"
	type delivery struct {
		events []hubspot.WebhookEvent
		v3, v1 error
	}
	got := make(chan delivery, 16)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		v := hubspot.Verifier{Secret: secret}
		d := delivery{v3: v.VerifyHTTP(r, body)}
		// The same delivery also carries a v1 signature.
		v1 := hubspot.SignedRequest{Version: hubspot.SignatureV1, Signature: r.Header.Get(hubspot.HeaderSignature), Body: body}
		d.v1 = v.Verify(v1)
		d.events, err = hubspot.ParseWebhookEvents(body)
		if err != nil {
			d.v3 = fmt.Errorf("parse: %w", err)
		}
		got <- d
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)

	srv, p := sandbox(t, hubspottest.Options{WebhookFlushInterval: 10 * time.Millisecond}, hubspottest.PortalOptions{})
	appID := srv.AddApp(hubspottest.App{ClientSecret: secret, TargetURL: receiver.URL + "/hooks/hubspot?tenant=a%40b"})
	resp, err := http.Post(fmt.Sprintf("%s/webhooks/v3/%d/subscriptions", srv.URL, appID), "application/json",
		strings.NewReader(`{"eventType":"company.propertyChange","propertyName":"city","active":true}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create subscription: %s", resp.Status)
	}
	ids := p.SeedCompanies(map[string]string{"name": "Acme"})
	if err := p.UIEdit("companies", ids[0], map[string]string{"city": "Zürich"}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d.v3 != nil || d.v1 != nil {
			t.Fatalf("sandbox delivery rejected: v3 %v, v1 %v", d.v3, d.v1)
		}
		if len(d.events) != 1 {
			t.Fatalf("events = %+v", d.events)
		}
		e := d.events[0]
		if e.SubscriptionType != "company.propertyChange" || e.PropertyName != "city" || e.PropertyValue != "Zürich" ||
			e.ChangeSource != "CRM_UI" || fmt.Sprint(e.ObjectID) != ids[0] || e.PortalID != p.ID() || e.AppID != appID {
			t.Fatalf("event = %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivery within 10s")
	}
}
