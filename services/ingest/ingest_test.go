package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/proto"

	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/services/ingest"
)

const (
	portalA = "1001"
	portalB = "2002"
	keyA    = "sbk_test_key_for_portal_a"
	keyB    = "sbk_test_key_for_portal_b"
)

// env is one ingest service on an embedded JetStream with two portals.
type env struct {
	srv  *natstest.Server
	js   jetstream.JetStream
	svc  *ingest.Service
	base string
}

func portalYAML(id, key string) []byte {
	return fmt.Appendf(nil, `portal_id: %q
name: "Test %s"
hubspot:
  auth: { type: private_app, secret: HUBSPOT_TOKEN_%s }
  tier: starter
ingest:
  api_keys:
    - { name: tests, hash: %q }
signal_types: [page_view, pricing_page_visit, demo_request]
`, id, id, id, portal.HashAPIKey(key))
}

func start(t *testing.T) *env {
	t.Helper()
	// Production sets the propagator in telemetry.Setup; the publisher injects through it.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	ctx, cancel := context.WithCancel(context.Background())
	srv := natstest.Run(t)
	js := srv.JetStream(t)
	nc := srv.Connect(t)
	js2, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, natsx.BucketPortals)
	if err != nil {
		t.Fatal(err)
	}
	store := portal.NewStore(kv)
	for id, key := range map[string]string{portalA: keyA, portalB: keyB} {
		pc, err := portal.Parse(portalYAML(id, key))
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Put(ctx, pc); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := portal.Watch(ctx, kv, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(reg.Portals()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	svc, err := ingest.New(ingest.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", NATSEndpoint: true,
		MaxBodyBytes: 1 << 20, MaxFutureSkew: 5 * time.Minute, MaxAge: 365 * 24 * time.Hour,
		StreamWindow: 4, ShutdownTimeout: 5 * time.Second,
	}, ingest.Deps{NC: nc, JS: js2, Portals: reg, Logger: slog.New(slog.DiscardHandler),
		Meter: noop.NewMeterProvider(), Tracer: sdktrace.NewTracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest Run: %v", err)
		}
		reg.Close()
	})
	return &env{srv: srv, js: js, svc: svc, base: "http://" + svc.HTTPAddr()}
}

type response struct {
	Accepted, Duplicates, Rejected int
	Results                        []struct {
		Index  int
		ID     string
		Status string
		Errors []struct{ Field, Message string }
	}
	Error struct{ Code, Message string }
}

func (e *env) post(t *testing.T, path, key, contentType string, body []byte) (int, http.Header, response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out response
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", res.StatusCode, err, raw)
	}
	return res.StatusCode, res.Header, out
}

// streamMsgs returns every message of stream, in order.
func (e *env) streamMsgs(t *testing.T, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %s seq %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

func signalsBody(items ...string) []byte {
	return []byte(`{"signals":[` + strings.Join(items, ",") + `]}`)
}

func TestValidBatchLandsWithSubjectsHeadersAndIDs(t *testing.T) {
	e := start(t)
	status, _, res := e.post(t, "/v1/portals/"+portalA+"/signals", keyA, "application/json", signalsBody(
		`{"id":"s-1","type":"pricing_page_visit","account":{"domain":"https://www.Dropbox.com/app","aliases":["db.tt","WWW.DROPBOX.COM"]},"visitor":{"email":"Ann@Dropbox.com"},"strength":"high","occurred_at":"2026-01-02T03:04:05Z"}`,
		`{"type":"page_view","visitor":{"email":"bob@us.example.com"}}`,
	))
	if status != http.StatusAccepted || res.Accepted != 2 {
		t.Fatalf("status %d, response %+v", status, res)
	}
	generated := res.Results[1].ID
	if generated == "" || res.Results[0].ID != "s-1" {
		t.Fatalf("ids: %+v", res.Results)
	}
	msgs := e.streamMsgs(t, "SIGNALS")
	if len(msgs) != 2 {
		t.Fatalf("stream has %d messages, want 2", len(msgs))
	}
	wantIDs := []string{"sig:" + portalA + ":s-1", "sig:" + portalA + ":" + generated}
	for i, m := range msgs {
		if m.Subject != "signals.v1."+portalA+".received" {
			t.Errorf("msg %d subject %q", i, m.Subject)
		}
		if got := m.Header.Get("Nats-Msg-Id"); got != wantIDs[i] {
			t.Errorf("msg %d Nats-Msg-Id %q, want %q", i, got, wantIDs[i])
		}
		if got := m.Header.Get(natsx.HeaderEventType); got != "signalbridge.signals.v1.SignalReceived" {
			t.Errorf("msg %d event type %q", i, got)
		}
		if m.Header.Get("traceparent") == "" {
			t.Errorf("msg %d has no lower-case traceparent header: %v", i, m.Header)
		}
	}
	var ev signalsv1.SignalReceived
	if err := proto.Unmarshal(msgs[0].Data, &ev); err != nil {
		t.Fatal(err)
	}
	if got := ev.Signal.Account.Domain; got != "dropbox.com" {
		t.Errorf("domain normalised to %q", got)
	}
	if got := ev.Signal.Account.Aliases; len(got) != 1 || got[0] != "db.tt" {
		t.Errorf("aliases %v: want [db.tt] (the primary domain dropped)", got)
	}
	if got := ev.Signal.Visitor.Email; got != "ann@dropbox.com" {
		t.Errorf("email %q", got)
	}
	if ev.Meta.EventId != wantIDs[0] || ev.Meta.PortalId != portalA || ev.SubmittedBy != "tests" {
		t.Errorf("meta %+v submitted_by %q", ev.Meta, ev.SubmittedBy)
	}
	var ev2 signalsv1.SignalReceived
	if err := proto.Unmarshal(msgs[1].Data, &ev2); err != nil {
		t.Fatal(err)
	}
	if got := ev2.Signal.Account.Domain; got != "us.example.com" {
		t.Errorf("domain from business email = %q, want us.example.com (subdomain kept)", got)
	}
}

func TestDuplicatesAreStoredOnce(t *testing.T) {
	e := start(t)
	one := `{"id":"dup-1","type":"page_view","account":{"domain":"acme.com"}}`
	two := `{"id":"dup-2","type":"page_view","account":{"domain":"acme.com"}}`
	status, _, res := e.post(t, "/v1/portals/"+portalA+"/signals", keyA, "application/json", signalsBody(one, one))
	if status != http.StatusAccepted || res.Accepted != 1 || res.Duplicates != 1 {
		t.Fatalf("same id twice in one batch: %d %+v", status, res)
	}
	// A client retry of a half-new batch: dup-1 again plus the new dup-2.
	status, _, res = e.post(t, "/v1/portals/"+portalA+"/signals", keyA, "application/json", signalsBody(one, two))
	if status != http.StatusAccepted || res.Accepted != 1 || res.Duplicates != 1 || res.Results[0].Status != "duplicate" {
		t.Fatalf("retry: %d %+v", status, res)
	}
	// The same id for another portal is another signal.
	status, _, res = e.post(t, "/v1/portals/"+portalB+"/signals", keyB, "application/json", signalsBody(one))
	if status != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("portal B: %d %+v", status, res)
	}
	if n := len(e.streamMsgs(t, "SIGNALS")); n != 3 {
		t.Fatalf("stream has %d messages, want 3", n)
	}
}

func TestBadInputIsRefusedAndNothingPublished(t *testing.T) {
	e := start(t)
	good := `{"id":"ok-1","type":"page_view","account":{"domain":"acme.com"}}`
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf(`{"id":"m-%d","type":"page_view","account":{"domain":"acme.com"}}`, i)
	}
	cases := []struct {
		name        string
		path, key   string
		contentType string
		body        []byte
		status      int
		field       string // for item-level rejections
	}{
		{"no key", "/v1/portals/" + portalA + "/signals", "", "application/json", signalsBody(good), 401, ""},
		{"unknown key", "/v1/portals/" + portalA + "/signals", "sbk_nope", "application/json", signalsBody(good), 401, ""},
		{"key of another portal", "/v1/portals/" + portalA + "/signals", keyB, "application/json", signalsBody(good), 403, ""},
		{"unknown portal", "/v1/portals/999/signals", keyA, "application/json", signalsBody(good), 403, ""},
		{"bad portal token", "/v1/portals/a.b/signals", keyA, "application/json", signalsBody(good), 400, ""},
		{"not json content type", "/v1/portals/" + portalA + "/signals", keyA, "text/plain", signalsBody(good), 415, ""},
		{"malformed json", "/v1/portals/" + portalA + "/signals", keyA, "application/json", []byte(`{"signals":[`), 400, ""},
		{"wrong envelope", "/v1/portals/" + portalA + "/signals", keyA, "application/json", []byte(`{"events":[]}`), 400, ""},
		{"empty batch", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(), 400, ""},
		{"too many items", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(many...), 413, ""},
		{"body too large", "/v1/portals/" + portalA + "/signals", keyA, "application/json", append(signalsBody(good), bytes.Repeat([]byte(" "), 2<<20)...), 413, ""},
		{"bad domain", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(`{"type":"page_view","account":{"domain":"co.uk"}}`), 400, "account.domain"},
		{"ip as domain", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(`{"type":"page_view","account":{"domain":"http://10.1.2.3/x"}}`), 400, "account.domain"},
		{"bad alias", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(`{"type":"page_view","account":{"domain":"acme.com","aliases":["ok.com","not a domain"]}}`), 400, "account.aliases[1]"},
		{"bad email", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(`{"type":"page_view","visitor":{"email":"ann-at-acme.com"}}`), 400, "visitor.email"},
		{"unknown signal type", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(`{"type":"telepathy","account":{"domain":"acme.com"}}`), 400, "type"},
		{"missing type", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(`{"account":{"domain":"acme.com"}}`), 400, "type"},
		{"no account and no email", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(`{"type":"page_view"}`), 400, "account.domain"},
		{"future timestamp", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(`{"type":"page_view","account":{"domain":"acme.com"},"occurred_at":"` + future + `"}`), 400, "occurred_at"},
		{"unparsable timestamp", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(`{"type":"page_view","account":{"domain":"acme.com"},"occurred_at":"yesterday"}`), 400, "occurred_at"},
		{"unknown strength", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(`{"type":"page_view","account":{"domain":"acme.com"},"strength":"huge"}`), 400, "strength"},
		{"unknown field", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(`{"type":"page_view","account":{"domain":"acme.com"},"colour":"red"}`), 400, "colour"},
		{"wrong field type", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(`{"type":7,"account":{"domain":"acme.com"}}`), 400, "type"},
		{"bad id characters", "/v1/portals/" + portalA + "/signals", keyA, "application/json", signalsBody(`{"id":"a b","type":"page_view","account":{"domain":"acme.com"}}`), 400, "id"},
		{"score out of range", "/v1/portals/" + portalA + "/scores", keyA, "application/json", []byte(`{"scores":[{"domain":"acme.com","intent_score":140}]}`), 400, "intent_score"},
		{"score grade unknown", "/v1/portals/" + portalA + "/scores", keyA, "application/json", []byte(`{"scores":[{"domain":"acme.com","intent_score":40,"icp_fit_grade":"Z"}]}`), 400, "icp_fit_grade"},
		{"score without domain", "/v1/portals/" + portalA + "/scores", keyA, "application/json", []byte(`{"scores":[{"intent_score":40}]}`), 400, "domain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, res := e.post(t, tc.path, tc.key, tc.contentType, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %+v", status, tc.status, res)
			}
			if tc.field == "" {
				if res.Error.Code == "" || res.Error.Message == "" {
					t.Fatalf("no error code and message in %+v", res)
				}
				return
			}
			if len(res.Results) != 1 || res.Results[0].Status != "rejected" {
				t.Fatalf("results %+v", res.Results)
			}
			found := false
			for _, fe := range res.Results[0].Errors {
				if fe.Field == tc.field && fe.Message != "" {
					found = true
				}
			}
			if !found {
				t.Fatalf("no error for field %q in %+v", tc.field, res.Results[0].Errors)
			}
		})
	}
	for _, stream := range []string{"SIGNALS", "SCORES"} {
		if n := len(e.streamMsgs(t, stream)); n != 0 {
			t.Fatalf("%s has %d messages after only bad requests", stream, n)
		}
	}

	// A mixed batch: the good item is stored, the bad one is not, and the answer is 207.
	status, _, res := e.post(t, "/v1/portals/"+portalA+"/signals", keyA, "application/json",
		signalsBody(good, `{"id":"bad-1","type":"page_view","account":{"domain":"localhost"}}`))
	if status != http.StatusMultiStatus || res.Accepted != 1 || res.Rejected != 1 || res.Results[1].ID != "bad-1" {
		t.Fatalf("mixed batch: %d %+v", status, res)
	}
	msgs := e.streamMsgs(t, "SIGNALS")
	if len(msgs) != 1 || msgs[0].Header.Get("Nats-Msg-Id") != "sig:"+portalA+":ok-1" {
		t.Fatalf("after the mixed batch the stream holds %d messages", len(msgs))
	}

	// Wrong method.
	res2, err := http.Get(e.base + "/v1/portals/" + portalA + "/signals")
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d, want 405", res2.StatusCode)
	}
}

func TestScoresLandOnceWithDeterministicIDs(t *testing.T) {
	e := start(t)
	body := []byte(`{"scores":[{"domain":"WWW.Acme.COM","aliases":["acme.io"],"intent_score":87.5,"intent_strength":"very high","intent_trend":"surging","icp_fit_score":72,"icp_fit_grade":"B","scored_at":"2026-11-20T02:00:00Z"}]}`)
	for i := range 2 {
		status, _, res := e.post(t, "/v1/portals/"+portalA+"/scores", keyA, "application/json", body)
		if status != http.StatusAccepted || res.Accepted+res.Duplicates != 1 {
			t.Fatalf("round %d: %d %+v", i, status, res)
		}
		if i == 1 && res.Duplicates != 1 {
			t.Fatalf("resubmitted score not reported as duplicate: %+v", res)
		}
	}
	msgs := e.streamMsgs(t, "SCORES")
	if len(msgs) != 1 {
		t.Fatalf("SCORES holds %d messages, want 1", len(msgs))
	}
	if got, want := msgs[0].Header.Get("Nats-Msg-Id"), "score:"+portalA+":acme.com:1795140000000"; got != want {
		t.Fatalf("msg id %q, want %q", got, want)
	}
	if msgs[0].Subject != "scores.v1."+portalA+".updated" {
		t.Fatalf("subject %q", msgs[0].Subject)
	}
}

// TestJetStreamOutageGives503AndLosesNothing stops NATS while clients keep sending, then
// restarts it: every signal that got a 2xx is in the stream afterwards, every refusal was a
// 503 with Retry-After, and a client that retries its refused batches gets them all stored.
func TestJetStreamOutageGives503AndLosesNothing(t *testing.T) {
	e := start(t)
	acked := map[string]bool{}
	var refused [][]byte
	send := func(batch int) (int, http.Header) {
		items := make([]string, 20)
		for i := range items {
			items[i] = fmt.Sprintf(`{"id":"o-%d-%d","type":"page_view","account":{"domain":"acme.com"}}`, batch, i)
		}
		body := signalsBody(items...)
		status, hdr, res := e.post(t, "/v1/portals/"+portalA+"/signals", keyA, "application/json", body)
		switch status {
		case http.StatusAccepted:
			for _, r := range res.Results {
				acked[r.ID] = true
			}
		case http.StatusServiceUnavailable:
			refused = append(refused, body)
		default:
			t.Fatalf("batch %d: status %d %+v", batch, status, res)
		}
		return status, hdr
	}
	for b := range 5 {
		send(b)
	}
	e.srv.Stop()
	saw503 := false
	for b := 5; b < 10; b++ {
		status, hdr := send(b)
		if status == http.StatusServiceUnavailable {
			saw503 = true
			if hdr.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		}
	}
	if !saw503 {
		t.Fatal("no 503 while NATS was down")
	}
	e.srv.Restart(t)
	// The client retries what was refused, until the connection is back.
	deadline := time.Now().Add(20 * time.Second)
	for len(refused) > 0 && time.Now().Before(deadline) {
		body := refused[0]
		status, _, res := e.post(t, "/v1/portals/"+portalA+"/signals", keyA, "application/json", body)
		if status == http.StatusServiceUnavailable {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if status != http.StatusAccepted {
			t.Fatalf("retry: %d %+v", status, res)
		}
		for _, r := range res.Results {
			acked[r.ID] = true
		}
		refused = refused[1:]
	}
	if len(refused) > 0 {
		t.Fatalf("%d batches still refused after restart", len(refused))
	}
	stored := map[string]bool{}
	for _, m := range e.streamMsgs(t, "SIGNALS") {
		stored[strings.TrimPrefix(m.Header.Get(nats.MsgIdHdr), "sig:"+portalA+":")] = true
	}
	for id := range acked {
		if !stored[id] {
			t.Errorf("acknowledged signal %s is missing after restart", id)
		}
	}
	if len(stored) != 200 || len(acked) != 200 {
		t.Fatalf("stored %d, acknowledged %d; want 200 each", len(stored), len(acked))
	}
}
