package devstack_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	hubspotv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/hubspot/v1"
	"github.com/signalbridge/signalbridge/services/devstack"
	"github.com/signalbridge/signalbridge/services/ingest"
	webhookrx "github.com/signalbridge/signalbridge/services/webhook-receiver"
)

func config(dir string) devstack.Config {
	return devstack.Config{
		DataDir: dir, NATSHost: "127.0.0.1", NATSPort: 0,
		Ingest: ingest.Config{
			HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", NATSEndpoint: true,
			MaxBodyBytes: 1 << 20, MaxFutureSkew: 5 * time.Minute, MaxAge: time.Hour * 24 * 365,
			StreamWindow: 4, ShutdownTimeout: 5 * time.Second,
		},
		Webhook: webhookrx.Config{HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"},
		Logger:  slog.New(slog.DiscardHandler),
	}
}

// run starts a stack and returns it with a stop function that waits for an orderly shutdown.
func run(t *testing.T, cfg devstack.Config) (*devstack.Stack, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := devstack.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		st.Close()
	}
	t.Cleanup(stop)
	return st, stop
}

func TestDemoSignalEndToEndAndDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	st, stop := run(t, config(dir))
	if !st.InMemoryCache() {
		t.Fatal("without RedisURL the cache should be the in-memory stand-in")
	}
	if err := st.Redis.Set(context.Background(), "sb:{12345678}:probe", "1", time.Minute).Err(); err != nil {
		t.Fatalf("cache: %v", err)
	}
	body := `{"signals":[{"id":"demo-1","type":"pricing_page_visit","account":{"domain":"https://www.Dropbox.com/pricing"},"visitor":{"email":"Ann@Dropbox.com"},"strength":"high"}]}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+st.Ingest.HTTPAddr()+"/v1/portals/12345678/signals", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+devstack.DemoAPIKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", res.StatusCode, raw)
	}
	var out struct{ Accepted int }
	if err := json.Unmarshal(raw, &out); err != nil || out.Accepted != 1 {
		t.Fatalf("response %s (%v)", raw, err)
	}
	// Without a HubSpot token the sandbox serves the demo portal's CRM.
	hreq, _ := http.NewRequest(http.MethodGet, st.HubSpotURL+"/crm/v3/objects/companies?limit=2", nil)
	hreq.Header.Set("Authorization", "Bearer "+st.SandboxToken())
	hres, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	var page struct{ Results []struct{ ID string } }
	err = json.NewDecoder(hres.Body).Decode(&page)
	hres.Body.Close()
	if err != nil || hres.StatusCode != http.StatusOK || len(page.Results) != 2 {
		t.Fatalf("sandbox companies: status %d, %d results, %v", hres.StatusCode, len(page.Results), err)
	}
	metrics, err := http.Get("http://" + st.Ingest.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	metrics.Body.Close()
	if metrics.StatusCode != http.StatusOK {
		t.Fatalf("/readyz %d", metrics.StatusCode)
	}
	stop()

	// Start again on the same data folder: the acknowledged signal is still there.
	st2, _ := run(t, config(dir))
	s, err := st2.JS.Stream(context.Background(), "SIGNALS")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), "signals.v1.12345678.received")
	if err != nil {
		t.Fatalf("signal lost across restart: %v", err)
	}
	if got := m.Header.Get("Nats-Msg-Id"); got != "sig:12345678:demo-1" {
		t.Fatalf("last message id %q", got)
	}
}

// TestSandboxChangeReachesTheHubSpotStream: a contact created through the sandbox's API becomes
// a signed webhook to webhook-receiver, which publishes it on the HUBSPOT stream, marked as an
// echo of our own app's write.
func TestSandboxChangeReachesTheHubSpotStream(t *testing.T) {
	st, _ := run(t, config(t.TempDir()))
	req, _ := http.NewRequest(http.MethodPost, st.HubSpotURL+"/crm/v3/objects/contacts",
		strings.NewReader(`{"properties":{"email":"new.person@example.com","firstname":"New"}}`))
	req.Header.Set("Authorization", "Bearer "+st.SandboxToken())
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	err = json.NewDecoder(res.Body).Decode(&created)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("create contact: %d %v", res.StatusCode, err)
	}
	s, err := st.JS.Stream(context.Background(), "HUBSPOT")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		m, err := s.GetLastMsgForSubject(context.Background(), "hubspot.v1.12345678.contact.creation")
		if err == nil {
			var ev hubspotv1.HubSpotEvent
			if err := proto.Unmarshal(m.Data, &ev); err != nil {
				t.Fatal(err)
			}
			if strconv.FormatInt(ev.ObjectId, 10) != created.ID || !ev.Echo {
				t.Fatalf("event %+v: want object %s marked as echo", &ev, created.ID)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no contact.creation event on HUBSPOT: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestUnknownServiceIsRefused(t *testing.T) {
	cfg := config(t.TempDir())
	cfg.Services = []string{"ingest", "nope"}
	if _, err := devstack.Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), `unknown service "nope"`) {
		t.Fatalf("err = %v", err)
	}
}
