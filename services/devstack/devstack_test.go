package devstack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	hubspotv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/hubspot/v1"
	scoresyncv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scoresync/v1"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
	"github.com/signalbridge/signalbridge/libs/grpcx"
	"github.com/signalbridge/signalbridge/services/devstack"
)

func config(t *testing.T, dir string) devstack.Config {
	t.Helper()
	cfg, err := devstack.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir, cfg.Logger = dir, slog.New(slog.DiscardHandler)
	cfg.Ingest.ShutdownTimeout, cfg.Webhook.ShutdownTimeout = 5*time.Second, 5*time.Second
	cfg.Matcher.ShutdownTimeout, cfg.ScoreSync.ShutdownTimeout = 5*time.Second, 5*time.Second
	cfg.ScoreSync.IntakeLinger = 50 * time.Millisecond
	return cfg
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
	st, stop := run(t, config(t, dir))
	if !st.InMemoryCache() {
		t.Fatal("without RedisURL the cache should be the in-memory stand-in")
	}
	if err := st.Redis.Set(context.Background(), "sb:{12345678}:probe", "1", time.Minute).Err(); err != nil {
		t.Fatalf("cache: %v", err)
	}
	raw := postJSON(t, "http://"+st.Ingest.HTTPAddr()+"/v1/portals/12345678/signals",
		`{"signals":[{"id":"demo-1","type":"pricing_page_visit","account":{"domain":"https://www.Dropbox.com/pricing"},"visitor":{"email":"Ann@Dropbox.com"},"strength":"high"}]}`)
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
	st2, _ := run(t, config(t, dir))
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
	st, _ := run(t, config(t, t.TempDir()))
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
	cfg := config(t, t.TempDir())
	cfg.Services = []string{"ingest", "nope"}
	if _, err := devstack.Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), `unknown service "nope"`) {
		t.Fatalf("err = %v", err)
	}
}

// postJSON posts body to ingest with the demo key, wants a 202 and returns the answer.
func postJSON(t *testing.T, url, body string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+devstack.DemoAPIKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s", url, res.StatusCode, raw)
	}
	return raw
}

// eventually polls check every 50 ms until it returns nil, and fails with its last error
// once ctx ends.
func eventually(ctx context.Context, t *testing.T, what string, check func() error) {
	t.Helper()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestSignalMatchedAndScoreSyncedToTheSandbox runs every service: a signal for a demo
// company's domain comes out of the matcher as a SignalMatched naming that company, and a
// score for the domain, once score-sync has taken it in, reaches the company's
// sb_intent_score property in the sandbox with one TriggerSync.
func TestSignalMatchedAndScoreSyncedToTheSandbox(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, _ := run(t, config(t, t.TempDir()))
	if st.Matcher == nil || st.ScoreSync == nil {
		t.Fatal("matcher and score-sync are not part of the default stack")
	}
	companyID, domain := st.DemoCompany()
	if companyID == "" {
		t.Fatal("no demo company with a domain of its own")
	}
	ingestURL := "http://" + st.Ingest.HTTPAddr() + "/v1/portals/12345678/"

	postJSON(t, ingestURL+"signals", `{"signals":[{"id":"e2e-match-1","type":"pricing_page_visit",`+
		`"account":{"domain":"https://www.`+domain+`/pricing"},"strength":"high"}]}`)
	signals, err := st.JS.Stream(ctx, "SIGNALS")
	if err != nil {
		t.Fatal(err)
	}
	var matched signalsv1.SignalMatched
	eventually(ctx, t, "SignalMatched of e2e-match-1", func() error {
		m, err := signals.GetLastMsgForSubject(ctx, "signals.v1.12345678.matched")
		if err != nil {
			return err
		}
		if err := proto.Unmarshal(m.Data, &matched); err != nil {
			return err
		}
		if got := matched.GetSignal().GetId(); got != "e2e-match-1" {
			return fmt.Errorf("last matched signal is %q", got)
		}
		return nil
	})
	if got := matched.GetCompany().GetCompanyId(); got != companyID {
		t.Fatalf("signal for %s matched company %q (unmatched reason %v), want %s", domain, got, matched.GetUnmatchedReason(), companyID)
	}

	postJSON(t, ingestURL+"scores", `{"scores":[{"domain":"`+domain+`","intent_score":87.5,`+
		`"intent_strength":"very_high","intent_trend":"surging","scored_at":"`+time.Now().UTC().Format(time.RFC3339)+`"}]}`)
	// score-sync acknowledges a score once it is stored in its table: wait for that.
	intake, err := st.JS.Consumer(ctx, "SCORES", "score-sync-scores")
	if err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "score-sync intake", func() error {
		info, err := intake.Info(ctx)
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < 1 || info.NumPending+uint64(info.NumAckPending) > 0 {
			return fmt.Errorf("ack floor %d, %d pending, %d unacknowledged", info.AckFloor.Stream, info.NumPending, info.NumAckPending)
		}
		return nil
	})

	conn, err := grpcx.Dial(ctx, st.ScoreSync.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := scoresyncv1.NewScoreSyncServiceClient(conn)
	// The scheduler may be running the portal's first sync (without our score): wait it out.
	var trig *scoresyncv1.TriggerSyncResponse
	eventually(ctx, t, "TriggerSync", func() error {
		trig, err = api.TriggerSync(ctx, &scoresyncv1.TriggerSyncRequest{PortalId: "12345678"})
		if status.Code(err) == codes.FailedPrecondition {
			return err
		}
		if err != nil {
			t.Fatal(err)
		}
		return nil
	})
	var run *scoresyncv1.SyncRun
	eventually(ctx, t, "sync run", func() error {
		res, err := api.GetRun(ctx, &scoresyncv1.GetRunRequest{PortalId: "12345678", RunId: trig.GetRun().GetRunId()})
		if err != nil {
			return err
		}
		if run = res.GetRun(); run.GetState() == scoresyncv1.RunState_RUN_STATE_RUNNING {
			return errors.New("still running")
		}
		return nil
	})
	if run.GetState() != scoresyncv1.RunState_RUN_STATE_SUCCEEDED || run.GetAccountsConfirmed() != 1 {
		t.Fatalf("run %s: %v, %d confirmed, %d unmatched: %s", run.GetRunId(), run.GetState(), run.GetAccountsConfirmed(), run.GetAccountsUnmatched(), run.GetMessage())
	}
	sb, _ := st.Sandbox.Portal(devstack.DemoPortalID)
	props, _ := sb.Object("companies", companyID)
	if v, err := strconv.ParseFloat(props["sb_intent_score"], 64); err != nil || v != 87.5 {
		t.Fatalf("company %s sb_intent_score = %q, want 87.5", companyID, props["sb_intent_score"])
	}
	if props["sb_intent_trend"] == "" {
		t.Errorf("company %s has no sb_intent_trend: %v", companyID, props)
	}
}
