package webhookrx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/telemetry/telemetrytest"
	webhookrx "github.com/signalbridge/signalbridge/services/webhook-receiver"
)

// The test portals. A and B share app 424242 (and so its client secret);
// the legacy portal's app signs v1; one portal takes no webhooks; one names
// a secret that is not set.
const (
	appID        int64 = 424242
	appSecret          = "app-client-secret-424242"
	legacyApp    int64 = 515151
	legacySecret       = "legacy-client-secret"

	portalA       = "1001"
	portalB       = "2002"
	portalLegacy  = "3003"
	portalNoHooks = "4004"
	portalNoValue = "5005"
	portalUnknown = "9999"
)

// fixedNow is the receiver's clock in most tests; requests are signed at it.
var fixedNow = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func portalYAML(id string, app int64, secretName, version string) []byte {
	hooks := ""
	if secretName != "" {
		hooks = fmt.Sprintf("\n  app_id: %d\n  webhook_secret: %s\n  webhook_signature_version: %s", app, secretName, version)
	}
	return fmt.Appendf(nil, `portal_id: %q
name: "Test %s"
hubspot:
  auth: { type: private_app, secret: HUBSPOT_TOKEN_%s }
  tier: starter%s
field_mappings:
  - source: contact.job_title
    targets: [ { object: contact, property: jobtitle } ]
`, id, id, id, hooks)
}

// env is an embedded JetStream with the test portals in its KV bucket.
type env struct {
	t       *testing.T
	srv     *natstest.Server
	js      jetstream.JetStream
	portals *portal.Registry
	secrets map[string]string
}

func newEnv(t *testing.T, extra ...*portal.Config) *env {
	t.Helper()
	// Production sets the propagator in telemetry.Setup; the publisher injects through it.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	ctx := context.Background()
	srv := natstest.Run(t)
	js := srv.JetStream(t)
	kv, err := js.KeyValue(ctx, natsx.BucketPortals)
	if err != nil {
		t.Fatal(err)
	}
	store := portal.NewStore(kv)
	configs := [][]byte{
		portalYAML(portalA, appID, "HS_APP_SECRET", "v3"),
		portalYAML(portalB, appID, "HS_APP_SECRET", "v3"),
		portalYAML(portalLegacy, legacyApp, "HS_LEGACY_SECRET", "v1"),
		portalYAML(portalNoHooks, 0, "", ""),
		portalYAML(portalNoValue, 616161, "HS_NOT_SET", "v3"),
	}
	for _, y := range configs {
		pc, err := portal.Parse(y)
		if err != nil {
			t.Fatalf("%v\n%s", err, y)
		}
		extra = append(extra, pc)
	}
	for _, pc := range extra {
		if err := store.Put(ctx, pc); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := portal.Watch(ctx, kv, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return &env{t: t, srv: srv, js: js, portals: reg, secrets: map[string]string{
		"HS_APP_SECRET":    appSecret,
		"HS_LEGACY_SECRET": legacySecret,
	}}
}

// svc is one running webhook-receiver.
type svc struct {
	*webhookrx.Service
	base    string // http://127.0.0.1:port
	metrics *sdkmetric.ManualReader
}

// serve starts a webhook-receiver on e; mod adjusts its config, now its
// clock (nil: fixedNow).
func (e *env) serve(t *testing.T, mod func(*webhookrx.Config), now func() time.Time) *svc {
	t.Helper()
	cfg := webhookrx.Config{
		HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Path: webhookrx.DefaultPath,
		MaxBodyBytes: 256 << 10, MaxSignatureAge: 5 * time.Minute, PublishTimeout: 3 * time.Second,
		ShutdownTimeout: 5 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	if now == nil {
		now = func() time.Time { return fixedNow }
	}
	reader := sdkmetric.NewManualReader()
	js := e.srv.BareJetStream(t) // the topology is provisioned already
	s, err := webhookrx.New(cfg, webhookrx.Deps{
		NC: js.Conn(), JS: js, Portals: e.portals,
		Secrets: func(name string) (string, bool) { v, ok := e.secrets[name]; return v, ok },
		Logger:  slog.New(slog.DiscardHandler),
		Meter:   sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		Tracer:  sdktrace.NewTracerProvider(),
		Metrics: http.NotFoundHandler(),
		Now:     now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook-receiver Run: %v", err)
		}
	})
	return &svc{Service: s, base: "http://" + s.HTTPAddr(), metrics: reader}
}

// event is a webhook event as HubSpot sends it.
type event map[string]any

func ev(eventID int64, portalID string, subscriptionType string, extra ...any) event {
	pid, _ := strconv.ParseInt(portalID, 10, 64)
	e := event{
		"eventId": eventID, "subscriptionId": 77, "portalId": pid, "appId": appID,
		"occurredAt": fixedNow.Add(-time.Minute).UnixMilli(), "subscriptionType": subscriptionType,
		"attemptNumber": 0, "objectId": 5000 + eventID,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		e[extra[i].(string)] = extra[i+1]
	}
	return e
}

func body(events ...event) []byte {
	b, err := json.Marshal(events)
	if err != nil {
		panic(err)
	}
	return b
}

// delivery is one webhook request.
type delivery struct {
	method      string // default POST
	path        string // default /webhooks/hubspot
	contentType string // default application/json; "-" sends none
	body        []byte
	header      map[string]string
	// signing
	secret    string    // "" sends no signature
	signedURI string    // default the URL posted to
	at        time.Time // X-HubSpot-Request-Timestamp; default fixedNow
	v1        bool      // sign v1 (secret + body) instead of v3
}

type answer struct {
	status int
	header http.Header
	ok     struct{ Received, Published, Duplicates, Ignored int }
	err    struct{ Code, Message string }
}

func (s *svc) post(t *testing.T, d delivery) answer {
	t.Helper()
	method := d.method
	if method == "" {
		method = http.MethodPost
	}
	path := d.path
	if path == "" {
		path = webhookrx.DefaultPath
	}
	url := s.base + path
	req, err := http.NewRequest(method, url, bytes.NewReader(d.body))
	if err != nil {
		t.Fatal(err)
	}
	switch d.contentType {
	case "":
		req.Header.Set("Content-Type", "application/json")
	case "-":
	default:
		req.Header.Set("Content-Type", d.contentType)
	}
	if d.secret != "" {
		signed := d.signedURI
		if signed == "" {
			signed = url
		}
		if d.v1 {
			req.Header.Set(hubspot.HeaderSignature, fmt.Sprintf("%x", hubspot.SignatureV1V2(hubspot.SignatureV1, d.secret, "", "", d.body)))
			req.Header.Set(hubspot.HeaderSignatureVersion, "v1")
		} else {
			at := d.at
			if at.IsZero() {
				at = fixedNow
			}
			ts := strconv.FormatInt(at.UnixMilli(), 10)
			req.Header.Set(hubspot.HeaderRequestTimestamp, ts)
			req.Header.Set(hubspot.HeaderSignatureV3, hubspot.SignV3(d.secret, method, signed, d.body, ts))
		}
	}
	for k, v := range d.header {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, header: res.Header}
	target := any(&a.ok)
	if res.StatusCode != http.StatusOK {
		var eb struct {
			Error *struct{ Code, Message string }
		}
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Error == nil {
			t.Fatalf("%d answer is not an error body: %s", res.StatusCode, raw)
		}
		a.err = *eb.Error
		return a
	}
	if err := json.Unmarshal(raw, target); err != nil {
		t.Fatalf("200 answer is not JSON: %v: %s", err, raw)
	}
	return a
}

// streamMsgs returns every message of the HUBSPOT stream, in order.
func (e *env) streamMsgs(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, natsx.StreamHubSpot)
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
			t.Fatalf("get seq %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// counter sums the data points of an int64 counter whose attributes include attrs.
func (s *svc) counter(t *testing.T, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	return telemetrytest.Int64(t, s.metrics, name, attrs...)
}

// histogramCount is the number of recordings of a histogram.
func (s *svc) histogramCount(t *testing.T, name string) uint64 {
	t.Helper()
	return telemetrytest.HistogramCount(t, s.metrics, name)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func attributeReason(r string) attribute.KeyValue { return attribute.String("reason", r) }
