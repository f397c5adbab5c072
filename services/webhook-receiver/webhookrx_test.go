package webhookrx_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/protobuf/proto"

	hubspotv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/hubspot/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
	webhookrx "github.com/signalbridge/signalbridge/services/webhook-receiver"
)

func decodeEvent(t *testing.T, data []byte) *hubspotv1.HubSpotEvent {
	t.Helper()
	var out hubspotv1.HubSpotEvent
	if err := proto.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestEventsLandWithSubjectsHeadersAndIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.serve(t, nil, nil)
	events := []event{
		ev(11, portalA, "contact.propertyChange", "propertyName", "jobtitle", "propertyValue", "CTO", "changeSource", "CRM_UI", "sourceId", "userId:7", "unmodelled", map[string]any{"k": 1}),
		ev(12, portalA, "company.creation", "changeFlag", "NEW"),
		ev(13, portalA, "deal.associationChange", "associationType", "DEAL_TO_COMPANY", "fromObjectId", 1, "toObjectId", 2, "associationRemoved", true, "isPrimaryAssociation", false),
		ev(14, portalB, "contact.merge", "primaryObjectId", 70, "mergedObjectIds", []int64{71, 72}, "newObjectId", 70),
	}
	b := body(events...)
	a := s.post(t, delivery{body: b, secret: appSecret})
	if a.status != http.StatusOK || a.ok.Received != 4 || a.ok.Published != 4 || a.ok.Duplicates != 0 || a.ok.Ignored != 0 {
		t.Fatalf("answer %+v", a)
	}
	msgs := e.streamMsgs(t)
	if len(msgs) != 4 {
		t.Fatalf("stream holds %d messages, want 4", len(msgs))
	}
	want := []struct{ subject, id string }{
		{"hubspot.v1.1001.contact.propertyChange", "hs:1001:11"},
		{"hubspot.v1.1001.company.creation", "hs:1001:12"},
		{"hubspot.v1.1001.deal.associationChange", "hs:1001:13"},
		{"hubspot.v1.2002.contact.merge", "hs:2002:14"},
	}
	for i, m := range msgs {
		if m.Subject != want[i].subject {
			t.Errorf("msg %d subject %q, want %q", i, m.Subject, want[i].subject)
		}
		if got := m.Header.Get(nats.MsgIdHdr); got != want[i].id {
			t.Errorf("msg %d Nats-Msg-Id %q, want %q", i, got, want[i].id)
		}
		if got := m.Header.Get(natsx.HeaderEventType); got != "signalbridge.hubspot.v1.HubSpotEvent" {
			t.Errorf("msg %d event type %q", i, got)
		}
		if m.Header.Get("traceparent") == "" {
			t.Errorf("msg %d has no lower-case traceparent: %v", i, m.Header)
		}
	}
	first := decodeEvent(t, msgs[0].Data)
	if first.Meta.GetEventId() != "hs:1001:11" || first.Meta.GetPortalId() != portalA || first.Meta.GetProducer() != "webhook-receiver/"+webhookrx.Version {
		t.Errorf("meta %+v", first.Meta)
	}
	if !first.Meta.GetOccurredAt().AsTime().Equal(fixedNow.Add(-time.Minute)) || !first.OccurredAt.AsTime().Equal(fixedNow.Add(-time.Minute)) {
		t.Errorf("occurred_at %v / %v", first.Meta.GetOccurredAt().AsTime(), first.OccurredAt.AsTime())
	}
	if first.EventId != 11 || first.PortalId != 1001 || first.AppId != appID || first.SubscriptionId != 77 ||
		first.PropertyName != "jobtitle" || first.PropertyValue != "CTO" || first.ChangeSource != "CRM_UI" || first.SourceId != "userId:7" || first.Echo {
		t.Errorf("event 0: %+v", first)
	}
	// raw_json is the event exactly as it was in the body.
	if !bytes.Contains(b, first.RawJson) || !bytes.Contains(first.RawJson, []byte(`"unmodelled":{"k":1}`)) {
		t.Errorf("raw_json %s is not the event as sent", first.RawJson)
	}
	assoc := decodeEvent(t, msgs[2].Data)
	if assoc.AssociationType != "DEAL_TO_COMPANY" || assoc.FromObjectId != 1 || assoc.ToObjectId != 2 || !assoc.AssociationRemoved {
		t.Errorf("association event %+v", assoc)
	}
	merge := decodeEvent(t, msgs[3].Data)
	if !slices.Equal(merge.MergedObjectIds, []int64{71, 72}) || merge.PrimaryObjectId != 70 || merge.NewObjectId != 70 {
		t.Errorf("merge event %+v", merge)
	}
	if got := s.counter(t, "signalbridge.webhook.events.received"); got != 4 {
		t.Errorf("received metric %d, want 4", got)
	}
	if got := s.counter(t, "signalbridge.webhook.events.published", attribute.Bool("echo", false)); got != 4 {
		t.Errorf("published metric %d, want 4", got)
	}
	if got := s.histogramCount(t, "signalbridge.webhook.publish.duration"); got != 1 {
		t.Errorf("publish latency recorded %d times, want 1 (one batch)", got)
	}
}

func TestBadInputIsRefusedAndNothingPublished(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.serve(t, nil, nil)
	good := body(ev(1, portalA, "contact.creation"))
	many := make([]event, webhookrx.MaxEvents+1)
	for i := range many {
		many[i] = ev(int64(100+i), portalA, "contact.creation")
	}
	without := func(field string) []byte {
		x := ev(2, portalA, "contact.creation")
		delete(x, field)
		return body(x)
	}
	otherApp := ev(3, portalA, "contact.creation")
	otherApp["appId"] = 999
	cases := []struct {
		name   string
		d      delivery
		status int
		reason string
	}{
		{"wrong signature", delivery{body: good, secret: "not-the-secret"}, 401, "signature_mismatch"},
		{"signature over another URI", delivery{body: good, secret: appSecret, signedURI: s.base + "/other"}, 401, "signature_mismatch"},
		{"no signature", delivery{body: good}, 401, "signature_missing"},
		{"stale timestamp", delivery{body: good, secret: appSecret, at: fixedNow.Add(-6 * time.Minute)}, 401, "signature_expired"},
		{"timestamp far in the future", delivery{body: good, secret: appSecret, at: fixedNow.Add(6 * time.Minute)}, 401, "signature_expired"},
		{"v1 only for a v3 app", delivery{body: good, secret: appSecret, v1: true}, 401, "signature_version"},
		{"app not the portal's", delivery{body: body(otherApp), secret: appSecret}, 401, "app_mismatch"},
		{"not json", delivery{body: []byte(`{{{`), secret: appSecret}, 400, "not_json"},
		{"not an array", delivery{body: []byte(`{"eventId":1}`), secret: appSecret}, 400, "not_array"},
		{"empty array", delivery{body: []byte(`[]`), secret: appSecret}, 400, "no_events"},
		{"more than 100 events", delivery{body: body(many...), secret: appSecret}, 400, "too_many_events"},
		{"missing eventId", delivery{body: without("eventId"), secret: appSecret}, 400, "invalid_event"},
		{"missing portalId", delivery{body: without("portalId"), secret: appSecret}, 400, "invalid_event"},
		{"missing subscriptionType", delivery{body: without("subscriptionType"), secret: appSecret}, 400, "invalid_event"},
		{"missing occurredAt", delivery{body: without("occurredAt"), secret: appSecret}, 400, "invalid_event"},
		{"mixed apps", delivery{body: body(ev(4, portalA, "contact.creation"), ev(5, portalLegacy, "contact.creation", "appId", legacyApp)), secret: appSecret}, 400, "mixed_apps"},
		{"body over the limit", delivery{body: append(good, bytes.Repeat([]byte(" "), 300<<10)...), secret: appSecret}, 413, "too_large"},
		{"GET", delivery{method: http.MethodGet, secret: appSecret}, 405, "method_not_allowed"},
		{"PUT", delivery{method: http.MethodPut, body: good, secret: appSecret}, 405, "method_not_allowed"},
		{"text/plain", delivery{body: good, contentType: "text/plain", secret: appSecret}, 415, "unsupported_media_type"},
		{"no content type", delivery{body: good, contentType: "-", secret: appSecret}, 415, "unsupported_media_type"},
		{"secret not resolvable", delivery{body: body(ev(6, portalNoValue, "contact.creation", "appId", 616161)), secret: "whatever"}, 503, "secret_unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := s.post(t, tc.d)
			if a.status != tc.status || a.err.Code != tc.reason || a.err.Message == "" {
				t.Fatalf("status %d %+v, want %d %s", a.status, a.err, tc.status, tc.reason)
			}
			if tc.status == 405 && a.header.Get("Allow") != http.MethodPost {
				t.Errorf("405 without Allow: POST")
			}
			if tc.status == 503 && a.header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			if got := s.counter(t, "signalbridge.webhook.requests.rejected", attribute.String("reason", tc.reason)); got == 0 {
				t.Errorf("rejection not counted under reason %s", tc.reason)
			}
		})
	}
	// A chunked body over the limit (no Content-Length) is cut off too.
	req, _ := http.NewRequest(http.MethodPost, s.base+webhookrx.DefaultPath, io.MultiReader(bytes.NewReader(good), strings.NewReader(strings.Repeat(" ", 300<<10))))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked oversize body: %d, want 413", res.StatusCode)
	}
	if n := len(e.streamMsgs(t)); n != 0 {
		t.Fatalf("the stream holds %d messages after only refused requests", n)
	}
	// The good body itself, signed, is accepted: the refusals were about what each case changed.
	if a := s.post(t, delivery{body: good, secret: appSecret}); a.status != http.StatusOK || a.ok.Published != 1 {
		t.Fatalf("control request: %+v", a)
	}
}

func TestSameBatchTwiceIsStoredOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.serve(t, nil, nil)
	events := []event{ev(21, portalA, "contact.creation"), ev(22, portalA, "contact.deletion"), ev(23, portalA, "company.deletion")}
	if a := s.post(t, delivery{body: body(events...), secret: appSecret}); a.status != 200 || a.ok.Published != 3 {
		t.Fatalf("first delivery: %+v", a)
	}
	// HubSpot's retry: same events, attemptNumber 1, a new signature.
	for _, x := range events {
		x["attemptNumber"] = 1
	}
	a := s.post(t, delivery{body: body(events...), secret: appSecret})
	if a.status != 200 || a.ok.Published != 0 || a.ok.Duplicates != 3 {
		t.Fatalf("retry: %+v", a)
	}
	// A half-new batch: two known events and a new one.
	a = s.post(t, delivery{body: body(events[0], ev(24, portalA, "contact.creation"), events[2]), secret: appSecret})
	if a.status != 200 || a.ok.Published != 1 || a.ok.Duplicates != 2 {
		t.Fatalf("half-new batch: %+v", a)
	}
	// The same event twice in one request.
	a = s.post(t, delivery{body: body(ev(25, portalA, "deal.creation"), ev(25, portalA, "deal.creation")), secret: appSecret})
	if a.status != 200 || a.ok.Published != 1 || a.ok.Duplicates != 1 {
		t.Fatalf("repeated event: %+v", a)
	}
	var ids []string
	for _, m := range e.streamMsgs(t) {
		ids = append(ids, m.Header.Get(nats.MsgIdHdr))
	}
	if want := []string{"hs:1001:21", "hs:1001:22", "hs:1001:23", "hs:1001:24", "hs:1001:25"}; !slices.Equal(ids, want) {
		t.Fatalf("stream ids %v, want %v", ids, want)
	}
	if got := s.counter(t, "signalbridge.webhook.events.duplicates"); got != 6 {
		t.Fatalf("duplicates metric %d, want 6", got)
	}
}

// TestJetStreamOutageGives503AndRetriesStoreEverythingOnce stops NATS while
// HubSpot keeps delivering, then restarts it and retries what was refused,
// HubSpot-style (same events, higher attemptNumber, new signature): every
// event is stored exactly once, and every refusal was a 503 with Retry-After.
func TestJetStreamOutageGives503AndRetriesStoreEverythingOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.serve(t, nil, nil)
	batch := func(n int) []event {
		out := make([]event, 20)
		for i := range out {
			out[i] = ev(int64(1000*(n+1)+i), portalA, "contact.propertyChange", "propertyName", "email", "propertyValue", fmt.Sprintf("p%d@x.com", i))
		}
		return out
	}
	acked := map[string]bool{}
	var refused [][]event
	deliver := func(events []event) answer {
		a := s.post(t, delivery{body: body(events...), secret: appSecret})
		switch a.status {
		case http.StatusOK:
			for _, x := range events {
				acked[fmt.Sprint(x["eventId"])] = true
			}
		case http.StatusServiceUnavailable:
			if a.header.Get("Retry-After") == "" || a.err.Code != "unavailable" {
				t.Fatalf("503 %+v without Retry-After or with the wrong code", a)
			}
			refused = append(refused, events)
		default:
			t.Fatalf("status %d %+v", a.status, a)
		}
		return a
	}
	for n := range 3 {
		deliver(batch(n))
	}
	e.srv.Stop()
	saw503 := false
	for n := 3; n < 6; n++ {
		if deliver(batch(n)).status == http.StatusServiceUnavailable {
			saw503 = true
		}
	}
	if !saw503 {
		t.Fatal("no 503 while NATS was down")
	}
	e.srv.Restart(t)
	// HubSpot retries what was refused; it also redelivers one batch that was
	// acknowledged (as if our 200 had been lost), which must not duplicate.
	refused = append(refused, batch(1))
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 1; len(refused) > 0; attempt++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d batches still refused after the restart", len(refused))
		}
		events := refused[0]
		for _, x := range events {
			x["attemptNumber"] = attempt
		}
		refused = refused[1:]
		if a := deliver(events); a.status != http.StatusOK {
			time.Sleep(50 * time.Millisecond)
		}
	}
	counts := map[string]int{}
	for _, m := range e.streamMsgs(t) {
		counts[strings.TrimPrefix(m.Header.Get(nats.MsgIdHdr), "hs:"+portalA+":")]++
	}
	for id := range acked {
		if counts[id] != 1 {
			t.Errorf("event %s stored %d times, want once", id, counts[id])
		}
	}
	if len(counts) != 120 || len(acked) != 120 {
		t.Fatalf("stored %d distinct events, acknowledged %d; want 120 each", len(counts), len(acked))
	}
}

func TestSignedURIIsRebuiltBehindProxies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	direct := e.serve(t, nil, nil)
	public := e.serve(t, func(c *webhookrx.Config) { c.PublicBaseURL = "https://hooks.example.com/sb/" }, nil)
	forwarded := e.serve(t, func(c *webhookrx.Config) { c.TrustForwarded = true }, nil)
	proxyHeaders := map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com"}
	const query = "?tenant=a%2Fb&x=1"
	id := int64(30)
	cases := []struct {
		name      string
		s         *svc
		signedURI string // "" = the URL the test calls
		query     string
		header    map[string]string
		status    int
	}{
		{"direct: the called URL", direct, "", "", nil, 200},
		{"direct: query kept in the signed URI", direct, "", query, nil, 200},
		{"direct: Host header counts", direct, "http://receiver.internal:8080" + webhookrx.DefaultPath, "", map[string]string{"Host": "receiver.internal:8080"}, 200},
		{"direct: forwarded headers ignored when not trusted", direct, "https://hooks.example.com" + webhookrx.DefaultPath, "", proxyHeaders, 401},
		{"public base URL", public, "https://hooks.example.com/sb" + webhookrx.DefaultPath, "", nil, 200},
		{"public base URL with query (escapes decoded as HubSpot does)", public, "https://hooks.example.com/sb" + webhookrx.DefaultPath + "?tenant=a/b&x=1", query, nil, 200},
		{"public base URL: the local URL does not verify", public, "", "", nil, 401},
		{"trusted forwarded headers", forwarded, "https://hooks.example.com" + webhookrx.DefaultPath, "", proxyHeaders, 200},
		{"trusted, first of a forwarded list", forwarded, "https://hooks.example.com" + webhookrx.DefaultPath, "", map[string]string{"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "hooks.example.com, proxy.internal"}, 200},
		{"trusted, without headers: the request's own URL", forwarded, "", "", nil, 200},
		{"trusted: signed for plain http but forwarded https", forwarded, "http://hooks.example.com" + webhookrx.DefaultPath, "", proxyHeaders, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id++
			signed := tc.signedURI
			if signed == "" {
				signed = tc.s.base + webhookrx.DefaultPath + tc.query
			}
			a := tc.s.post(t, delivery{path: webhookrx.DefaultPath + tc.query, body: body(ev(id, portalA, "contact.creation")), secret: appSecret, signedURI: signed, header: tc.header})
			if a.status != tc.status {
				t.Fatalf("status %d %+v, want %d", a.status, a.err, tc.status)
			}
		})
	}
}

func TestEchoesOfOurOwnWritesAreMarked(t *testing.T) {
	t.Parallel()
	// Portal 6006 names no app_id: the app whose signature verifies is ours.
	e := newEnv(t, mustParse(t, portalYAML("6006", 0, "HS_APP_SECRET", "v3")))
	s := e.serve(t, nil, nil)
	app := fmt.Sprint(appID)
	events := []event{
		ev(41, portalA, "contact.propertyChange", "propertyName", "jobtitle", "propertyValue", "CEO", "changeSource", "INTEGRATION", "sourceId", app),
		ev(42, portalA, "contact.propertyChange", "propertyName", "jobtitle", "propertyValue", "CEO", "changeSource", "API", "sourceId", app),
		ev(43, portalA, "contact.propertyChange", "propertyName", "jobtitle", "propertyValue", "CEO", "changeSource", "CRM_UI", "sourceId", "userId:"+app),
		ev(44, portalA, "contact.propertyChange", "propertyName", "jobtitle", "propertyValue", "CEO", "changeSource", "INTEGRATION", "sourceId", "777"),
		ev(45, portalA, "contact.creation", "changeSource", "IMPORT"),
		ev(46, "6006", "contact.propertyChange", "propertyName", "jobtitle", "propertyValue", "CEO", "changeSource", "INTEGRATION", "sourceId", app),
		ev(47, "6006", "contact.propertyChange", "propertyName", "jobtitle", "propertyValue", "CEO", "changeSource", "INTEGRATION", "sourceId", "777"),
	}
	if a := s.post(t, delivery{body: body(events...), secret: appSecret}); a.status != 200 || a.ok.Published != 7 {
		t.Fatalf("answer %+v", a)
	}
	want := []bool{true, true, false, false, false, true, false}
	for i, m := range e.streamMsgs(t) {
		if got := decodeEvent(t, m.Data).Echo; got != want[i] {
			t.Errorf("event %d echo = %v, want %v", 41+i, got, want[i])
		}
	}
	if got := s.counter(t, "signalbridge.webhook.events.published", attribute.Bool("echo", true)); got != 3 {
		t.Errorf("echo events counted %d, want 3", got)
	}
}

func TestPortalsWeDoNotServeAreAcknowledgedNotPublished(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.serve(t, nil, nil)
	// Only unknown portals: nothing to verify with, acknowledged so HubSpot stops.
	a := s.post(t, delivery{body: body(ev(51, portalUnknown, "contact.creation"), ev(52, portalUnknown, "contact.deletion"))})
	if a.status != 200 || a.ok.Ignored != 2 || a.ok.Published != 0 {
		t.Fatalf("unknown portal: %+v", a)
	}
	// A portal we serve without webhooks.
	a = s.post(t, delivery{body: body(ev(53, portalNoHooks, "contact.creation"))})
	if a.status != 200 || a.ok.Ignored != 1 {
		t.Fatalf("portal without webhooks: %+v", a)
	}
	// Mixed with a served portal: the served one's events are verified and stored.
	a = s.post(t, delivery{body: body(ev(54, portalUnknown, "contact.creation"), ev(55, portalA, "contact.creation")), secret: appSecret})
	if a.status != 200 || a.ok.Ignored != 1 || a.ok.Published != 1 {
		t.Fatalf("mixed: %+v", a)
	}
	// ... and still need a valid signature.
	a = s.post(t, delivery{body: body(ev(56, portalUnknown, "contact.creation"), ev(57, portalA, "contact.creation")), secret: "wrong"})
	if a.status != 401 {
		t.Fatalf("mixed with a bad signature: %+v", a)
	}
	msgs := e.streamMsgs(t)
	if len(msgs) != 1 || msgs[0].Header.Get(nats.MsgIdHdr) != "hs:1001:55" {
		t.Fatalf("stream holds %d messages, want only hs:1001:55", len(msgs))
	}
	if got := s.counter(t, "signalbridge.webhook.events.unknown_portal", attribute.String("reason", "unknown_portal")); got != 3 {
		t.Errorf("unknown-portal metric %d, want 3", got)
	}
	if got := s.counter(t, "signalbridge.webhook.events.unknown_portal", attribute.String("reason", "webhooks_not_configured")); got != 1 {
		t.Errorf("not-configured metric %d, want 1", got)
	}
}

func TestSignatureVersionFollowsThePortalsApp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.serve(t, nil, nil)
	legacy := func(id int64) []byte { return body(ev(id, portalLegacy, "contact.creation", "appId", legacyApp)) }
	cases := []struct {
		name   string
		d      delivery
		status int
	}{
		{"v1 app, v1 signature", delivery{body: legacy(61), secret: legacySecret, v1: true}, 200},
		{"v1 app, v3 signature", delivery{body: legacy(62), secret: legacySecret}, 200},
		{"v1 app, v1 signature with another secret", delivery{body: legacy(63), secret: appSecret, v1: true}, 401},
		{"v1 app, v3 with a stale timestamp", delivery{body: legacy(64), secret: legacySecret, at: fixedNow.Add(-10 * time.Minute)}, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if a := s.post(t, tc.d); a.status != tc.status {
				t.Fatalf("status %d %+v, want %d", a.status, a.err, tc.status)
			}
		})
	}
	if n := len(e.streamMsgs(t)); n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}
}

func TestAdminEndpointsAndPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.serve(t, func(c *webhookrx.Config) { c.Path = "/hooks/hs" }, nil)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 404 /* the test's handler */} {
		res, err := http.Get("http://" + s.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, res.StatusCode, want)
		}
	}
	if a := s.post(t, delivery{path: "/hooks/hs", body: body(ev(71, portalA, "contact.creation")), secret: appSecret}); a.status != 200 {
		t.Fatalf("configured path: %+v", a)
	}
	res, err := http.Post(s.base+webhookrx.DefaultPath, "application/json", strings.NewReader("[]"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("default path on a configured service: %d, want 404", res.StatusCode)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := webhookrx.Config{Path: "/webhooks/hubspot", MaxBodyBytes: 1 << 20, MaxSignatureAge: 5 * time.Minute, PublishTimeout: time.Second}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		mod     func(*webhookrx.Config)
		mention string
	}{
		{"tiny body limit", func(c *webhookrx.Config) { c.MaxBodyBytes = 10 }, "MAX_BODY_BYTES"},
		{"relative path", func(c *webhookrx.Config) { c.Path = "webhooks" }, "SB_WEBHOOK_PATH"},
		{"base URL without scheme", func(c *webhookrx.Config) { c.PublicBaseURL = "hooks.example.com" }, "PUBLIC_BASE_URL"},
		{"base URL with query", func(c *webhookrx.Config) { c.PublicBaseURL = "https://h.example.com/?a=b" }, "PUBLIC_BASE_URL"},
		{"no signature age", func(c *webhookrx.Config) { c.MaxSignatureAge = 0 }, "MAX_SIGNATURE_AGE"},
		{"no publish timeout", func(c *webhookrx.Config) { c.PublishTimeout = -1 }, "PUBLISH_TIMEOUT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := ok
			tc.mod(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.mention)
			}
		})
	}
}
