package matcher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/events/v1"
	hubspotv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/hubspot/v1"
	mappingv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/mapping/v1"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/redisx/redistest"
	"github.com/signalbridge/signalbridge/libs/telemetry/telemetrytest"
	"github.com/signalbridge/signalbridge/services/matcher"
	"github.com/signalbridge/signalbridge/services/matcher/internal/testenv"
)

// TestMain silences go-redis's own logger, which reports every refused dial of the
// outage tests on stderr.
func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

type options struct {
	sync    bool          // run the scheduled CRM reads
	proxied bool          // reach Redis through a proxy the test can cut
	noRedis bool          // run without Redis
	lag     time.Duration // sandbox search-index lag
	clock   *testenv.Clock
	cfg     func(*matcher.Config)
}

// env is one matcher on an embedded JetStream, the real Redis and a sandbox portal.
type env struct {
	srv     *natstest.Server
	js      jetstream.JetStream
	nc      *nats.Conn
	hs      *testenv.HubSpot
	sb      *hubspottest.Portal
	portal  string
	rdb     *redis.Client // direct, for checks
	proxy   *testenv.Proxy
	svc     *matcher.Service
	mapping mappingv1.MappingServiceClient
	health  healthpb.HealthClient
	conn    *grpc.ClientConn
	metrics *sdkmetric.ManualReader
}

func portalYAML(id string) []byte {
	return fmt.Appendf(nil, `portal_id: %q
name: "Matcher test %s"
hubspot:
  auth: { type: private_app, secret: HUBSPOT_TOKEN_%s }
  tier: enterprise
sync:
  crm_read_interval: 1h
`, id, id, id)
}

func start(t *testing.T, o options) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := natstest.Run(t)
	js := srv.JetStream(t)
	nc := srv.Connect(t)
	js2, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, js: js, nc: nc}
	var rdb *redis.Client
	if o.proxied {
		rdb, e.proxy, e.rdb = testenv.ProxiedRedis(t)
	} else {
		rdb = redistest.TestClient(t)
		e.rdb = rdb
	}
	id := testenv.PortalID(t, e.rdb)
	e.portal = strconv.FormatInt(id, 10)
	hopts := hubspottest.Options{SearchIndexLag: o.lag, WebhookFlushInterval: 5 * time.Millisecond, WebhookRetryBase: 50 * time.Millisecond}
	var now func() time.Time
	if o.clock != nil {
		hopts.Clock, now = o.clock.Now, o.clock.Now
	}
	e.hs = testenv.NewHubSpot(t, hopts)
	e.sb = e.hs.AddPortal(t, id)

	kv, err := js.KeyValue(ctx, natsx.BucketPortals)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := portal.Parse(portalYAML(e.portal))
	if err != nil {
		t.Fatal(err)
	}
	if err := portal.NewStore(kv).Put(ctx, pc); err != nil {
		t.Fatal(err)
	}
	reg, err := portal.Watch(ctx, kv, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the portal config", func() bool { _, ok := reg.Get(e.portal); return ok })

	cfg := matcher.Config{
		GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		SignalConsumer: "batch", SignalWorkers: 8, MatchBatch: 200, MatchParallel: 2, MatchLinger: time.Millisecond, CRMWorkers: 8, CRMLinger: 5 * time.Millisecond,
		NegativeTTL: time.Minute, SearchMirroredMisses: true, MissLinger: 2 * time.Millisecond, CacheKeys: 200_000,
		Sync: o.sync, SyncTick: 20 * time.Millisecond, FullReadEvery: -1, SyncConcurrency: 2, IndexLag: time.Minute,
		RedisProbe: 50 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if o.noRedis {
		rdb = nil
	}
	e.metrics = sdkmetric.NewManualReader()
	svc, err := matcher.New(cfg, matcher.Deps{
		NC: nc, JS: js2, Portals: reg, Redis: rdb, HubSpot: e.hs.Client, Logger: slog.New(slog.DiscardHandler),
		Meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.metrics)), Tracer: tracenoop.NewTracerProvider(), Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	conn, err := grpc.NewClient(svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e.conn = conn
	e.mapping = mappingv1.NewMappingServiceClient(conn)
	e.health = healthpb.NewHealthClient(conn)
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("matcher Run: %v", err)
		}
		reg.Close()
	})
	return e
}

func (e *env) sync(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.svc.SyncPortal(ctx, e.portal); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

type sig struct {
	id      string
	domain  string
	aliases []string
	email   string
}

func signalEventID(portal, id string) string { return "sig:" + portal + ":" + id }

func (e *env) publish(t *testing.T, sigs ...sig) {
	t.Helper()
	ctx := context.Background()
	for _, s := range sigs {
		eid := signalEventID(e.portal, s.id)
		ev := &signalsv1.SignalReceived{
			Meta: &eventsv1.EventMeta{EventId: eid, PortalId: e.portal, CorrelationId: "corr-" + s.id, Producer: "test"},
			Signal: &signalsv1.Signal{
				Id: s.id, Type: "page_view", OccurredAt: timestamppb.Now(),
				Account: &signalsv1.Account{Domain: s.domain, Aliases: s.aliases},
			},
		}
		if s.email != "" {
			ev.Signal.Visitor = &signalsv1.Visitor{Email: s.email}
		}
		m, err := natsx.NewMsg(ctx, natsx.SignalReceivedSubject(e.portal), eid, ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
}

// matched waits until the stream holds want SignalMatched messages of the portal and
// returns them by signal id, checking subject, Nats-Msg-Id and meta on the way.
func (e *env) matched(t *testing.T, want int, within time.Duration) map[string]*signalsv1.SignalMatched {
	t.Helper()
	ctx := context.Background()
	subject := natsx.SignalMatchedSubject(e.portal)
	out := map[string]*signalsv1.SignalMatched{}
	var next uint64 = 1
	deadline := time.Now().Add(within)
	stream, err := e.js.Stream(ctx, natsx.StreamSignals)
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for ; next <= info.State.LastSeq; next++ {
			m, err := stream.GetMsg(ctx, next)
			if err != nil || m.Subject != subject {
				continue
			}
			var ev signalsv1.SignalMatched
			if err := proto.Unmarshal(m.Data, &ev); err != nil {
				t.Fatalf("seq %d: %v", next, err)
			}
			sid := ev.GetSignal().GetId()
			wantID := "match:" + signalEventID(e.portal, sid)
			if got := m.Header.Get("Nats-Msg-Id"); got != wantID || ev.GetMeta().GetEventId() != wantID {
				t.Fatalf("signal %s: Nats-Msg-Id %q, event id %q, want %q", sid, got, ev.GetMeta().GetEventId(), wantID)
			}
			if ev.GetMeta().GetCausationId() != signalEventID(e.portal, sid) || ev.GetMeta().GetCorrelationId() != "corr-"+sid ||
				ev.GetMeta().GetPortalId() != e.portal || !strings.HasPrefix(ev.GetMeta().GetProducer(), "matcher/") {
				t.Fatalf("signal %s: meta %v", sid, ev.GetMeta())
			}
			if _, dup := out[sid]; dup {
				t.Fatalf("signal %s published twice", sid)
			}
			out[sid] = &ev
		}
		if len(out) >= want {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d of %d matched signals published", within, len(out), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// matchedCount is the number of SignalMatched messages of the portal in the stream.
func (e *env) matchedCount(t *testing.T) uint64 {
	t.Helper()
	ctx := context.Background()
	stream, err := e.js.Stream(ctx, natsx.StreamSignals)
	if err != nil {
		t.Fatal(err)
	}
	subject := natsx.SignalMatchedSubject(e.portal)
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// seed creates the test companies and contact; it returns their ids.
func seed(t *testing.T, sb *hubspottest.Portal) (co, ct []string) {
	t.Helper()
	co = sb.SeedCompanies(
		map[string]string{"name": "Few deals", "domain": "tie.com"},
		map[string]string{"name": "Most deals", "domain": "tie.com", "hubspot_owner_id": sb.Owners()[0].ID},
		map[string]string{"name": "Web only", "website": "https://www.web-only.io/en"},
		map[string]string{"name": "Aliased", "domain": "main.com", "hs_additional_domains": "alias-one.com;alias-two.net"},
		map[string]string{"name": "US branch", "domain": "us.branch.com"},
	)
	ct = sb.SeedContacts(map[string]string{"email": "ann@main.com", "hs_additional_emails": "ann@private.org", "associatedcompanyid": co[3], "hubspot_owner_id": sb.Owners()[1].ID})
	// "Few deals": one open deal. "Most deals": two open deals and a closed one.
	deals := sb.SeedDeals(
		map[string]string{"dealname": "a", "dealstage": "qualifiedtobuy"},
		map[string]string{"dealname": "b", "dealstage": "qualifiedtobuy"},
		map[string]string{"dealname": "c", "dealstage": "contractsent"},
		map[string]string{"dealname": "d", "dealstage": "closedwon"},
	)
	for i, d := range deals {
		target := co[1]
		if i == 0 {
			target = co[0]
		}
		if err := sb.Associate(hubspottest.Deals, d, hubspottest.Companies, target); err != nil {
			t.Fatal(err)
		}
	}
	return co, ct
}

func TestSignalsAreMatchedWithEvidence(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"batch", "natsx"} {
		t.Run(mode+" consumer", func(t *testing.T) {
			t.Parallel()
			testSignalsAreMatchedWithEvidence(t, mode)
		})
	}
}

func testSignalsAreMatchedWithEvidence(t *testing.T, mode string) {
	e := start(t, options{cfg: func(c *matcher.Config) { c.SignalConsumer = mode }})
	co, ct := seed(t, e.sb)
	e.sync(t)
	e.publish(t,
		sig{id: "tie", domain: "tie.com"},
		sig{id: "web", domain: "web-only.io"},
		sig{id: "alias", domain: "unknown-x.com", aliases: []string{"alias-one.com"}},
		sig{id: "sub", domain: "branch.com"},
		sig{id: "free", domain: "gmail.com"},
		sig{id: "free-contact", domain: "gmail.com", email: "ann@private.org"},
		sig{id: "contact", domain: "main.com", email: "ann@main.com"},
		sig{id: "nodomain", email: "bob@gmail.com"},
	)
	got := e.matched(t, 8, 20*time.Second)
	type want struct {
		company  string
		rule     signalsv1.MatchRule
		prop     string
		tie      signalsv1.TieBreak
		open     int32
		reason   signalsv1.UnmatchedReason
		contact  string
		domainEv string
	}
	wants := map[string]want{
		"tie":          {company: co[1], rule: signalsv1.MatchRule_MATCH_RULE_COMPANY_DOMAIN, prop: "domain", tie: signalsv1.TieBreak_TIE_BREAK_MOST_DEALS, open: 2, domainEv: "tie.com"},
		"web":          {company: co[2], rule: signalsv1.MatchRule_MATCH_RULE_COMPANY_WEBSITE, prop: "website", tie: signalsv1.TieBreak_TIE_BREAK_NONE, domainEv: "web-only.io"},
		"alias":        {company: co[3], rule: signalsv1.MatchRule_MATCH_RULE_ADDITIONAL_DOMAIN, prop: "hs_additional_domains", tie: signalsv1.TieBreak_TIE_BREAK_NONE, domainEv: "alias-one.com"},
		"sub":          {reason: signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_COMPANY},
		"free":         {reason: signalsv1.UnmatchedReason_UNMATCHED_REASON_FREE_MAIL_DOMAIN},
		"free-contact": {company: co[3], rule: signalsv1.MatchRule_MATCH_RULE_CONTACT_ADDITIONAL_EMAIL, prop: "hs_additional_emails", tie: signalsv1.TieBreak_TIE_BREAK_NONE, contact: ct[0], domainEv: "ann@private.org"},
		"contact":      {company: co[3], rule: signalsv1.MatchRule_MATCH_RULE_COMPANY_DOMAIN, prop: "domain", tie: signalsv1.TieBreak_TIE_BREAK_NONE, contact: ct[0], domainEv: "main.com"},
		"nodomain":     {reason: signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_DOMAIN},
	}
	for id, w := range wants {
		ev := got[id]
		if ev == nil {
			t.Errorf("%s: not published", id)
			continue
		}
		c := ev.GetCompany()
		if w.company == "" {
			if c != nil || ev.GetUnmatchedReason() != w.reason {
				t.Errorf("%s: company %v reason %v, want unmatched %v", id, c, ev.GetUnmatchedReason(), w.reason)
			}
			continue
		}
		evd := c.GetEvidence()
		if c.GetCompanyId() != w.company || evd.GetRule() != w.rule || evd.GetMatchedProperty() != w.prop || evd.GetTieBreak() != w.tie ||
			evd.GetMatchedDomain() != w.domainEv || c.GetOpenDealCount() != w.open || ev.GetUnmatchedReason() != 0 {
			t.Errorf("%s: got %v, want %+v", id, c, w)
		}
		if w.contact != "" && ev.GetContact().GetContactId() != w.contact {
			t.Errorf("%s: contact %v, want %s", id, ev.GetContact(), w.contact)
		}
	}
	if c := got["tie"].GetCompany(); c.GetOwnerId() != e.sb.Owners()[0].ID || c.GetName() != "Most deals" || len(c.GetEvidence().GetCandidateIds()) != 2 {
		t.Errorf("tie: owner/name/candidates = %v", c)
	}
	if c := got["contact"].GetContact(); c.GetOwnerId() != e.sb.Owners()[1].ID || c.GetEvidence().GetRule() != signalsv1.MatchRule_MATCH_RULE_CONTACT_EMAIL {
		t.Errorf("contact match = %v", c)
	}

	// signalbridge.matcher.signals counts them by outcome (once the publish
	// returned, a moment after the stream has them).
	outcome := func(o string) int64 {
		return telemetrytest.Int64(t, e.metrics, "signalbridge.matcher.signals", attribute.String("outcome", o))
	}
	for deadline := time.Now().Add(5 * time.Second); outcome("matched") != 5 || outcome("unmatched") != 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("signalbridge.matcher.signals: matched %d, unmatched %d; want 5 and 3", outcome("matched"), outcome("unmatched"))
		}
	}

	// Those look-ups left their answers in memory: the same domain again is answered
	// from there, and the metrics say so.
	hits := telemetrytest.Int64(t, e.metrics, "signalbridge.matcher.memory.hits")
	if n := telemetrytest.Int64(t, e.metrics, "signalbridge.matcher.memory.entries"); n == 0 {
		t.Errorf("signalbridge.matcher.memory.entries = 0 after matching")
	}
	res, err := e.mapping.ResolveAccount(t.Context(), &mappingv1.ResolveAccountRequest{PortalId: e.portal, Account: &mappingv1.AccountQuery{Domain: "tie.com"}})
	if err != nil || res.GetAnswer().GetCompany().GetCompanyId() != co[1] {
		t.Fatalf("ResolveAccount(tie.com) = %v, %v", res, err)
	}
	if after := telemetrytest.Int64(t, e.metrics, "signalbridge.matcher.memory.hits"); after != hits+1 {
		t.Errorf("signalbridge.matcher.memory.hits went from %d to %d for one known domain, want +1", hits, after)
	}
}

func TestRedeliveredSignalIsPublishedOnce(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	seed(t, e.sb)
	e.sync(t)
	e.publish(t, sig{id: "once", domain: "tie.com"})
	e.matched(t, 1, 10*time.Second)
	// The same signal event arrives again (a producer retry after the stream forgot its
	// id, or a redelivery): the match is published with the same id and de-duplicated.
	ctx := context.Background()
	ev := &signalsv1.SignalReceived{
		Meta:   &eventsv1.EventMeta{EventId: signalEventID(e.portal, "once"), PortalId: e.portal, CorrelationId: "corr-once"},
		Signal: &signalsv1.Signal{Id: "once", Type: "page_view", Account: &signalsv1.Account{Domain: "tie.com"}},
	}
	m, err := natsx.NewMsg(ctx, natsx.SignalReceivedSubject(e.portal), "retry-of-once", ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	e.publish(t, sig{id: "after", domain: "tie.com"}) // processed after the retry
	got := e.matched(t, 2, 10*time.Second)            // fails on a second copy of "once"
	if len(got) != 2 {
		t.Fatalf("got %d matched signals", len(got))
	}
	cons, err := e.js.Consumer(ctx, natsx.StreamSignals, "matcher-signals")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "every signal acknowledged", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	e.matched(t, 2, time.Second) // still exactly one per signal
}

func TestBadSignalIsDeadLettered(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"batch", "natsx"} {
		t.Run(mode+" consumer", func(t *testing.T) {
			t.Parallel()
			testBadSignalIsDeadLettered(t, mode)
		})
	}
}

func testBadSignalIsDeadLettered(t *testing.T, mode string) {
	e := start(t, options{cfg: func(c *matcher.Config) { c.SignalConsumer = mode }})
	ctx := context.Background()
	m := nats.NewMsg(natsx.SignalReceivedSubject(e.portal))
	m.Header.Set("Nats-Msg-Id", "garbage-1")
	m.Data = []byte("not a protobuf \xff\xff")
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	dlq, err := e.js.Stream(ctx, natsx.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the dead letter", func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	dm, err := dlq.GetLastMsgForSubject(ctx, natsx.DLQSubject(natsx.StreamSignals, "matcher-signals"))
	if err != nil {
		t.Fatal(err)
	}
	h := dm.Header
	if !strings.Contains(h.Get(natsx.HeaderDLQReason), "not a SignalReceived") || h.Get(natsx.HeaderDLQMsgID) != "garbage-1" ||
		h.Get(natsx.HeaderDLQSubject) != natsx.SignalReceivedSubject(e.portal) || h.Get(natsx.HeaderDLQStream) != natsx.StreamSignals ||
		h.Get(natsx.HeaderDLQConsumer) != "matcher-signals" || h.Get(natsx.HeaderDLQStreamSeq) != "1" ||
		h.Get("Nats-Msg-Id") != natsx.DLQMsgID(natsx.StreamSignals, 1) || string(dm.Data) != string(m.Data) {
		t.Fatalf("dead letter headers %v data %q", h, dm.Data)
	}
	// The original is terminated, not redelivered.
	cons, err := e.js.Consumer(ctx, natsx.StreamSignals, "matcher-signals")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the original settled", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
}

// Without Redis at all, signals are matched straight from HubSpot.
func TestWithoutRedisMatchesFromHubSpot(t *testing.T) {
	t.Parallel()
	e := start(t, options{noRedis: true})
	co, _ := seed(t, e.sb)
	e.publish(t, sig{id: "a", domain: "main.com"}, sig{id: "b", domain: "nobody-here.com"})
	got := e.matched(t, 2, 10*time.Second)
	if got["a"].GetCompany().GetCompanyId() != co[3] || got["b"].GetCompany() != nil ||
		got["b"].GetUnmatchedReason() != signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_COMPANY || !e.svc.Degraded() {
		t.Fatalf("a = %v, b = %v, degraded %v", got["a"], got["b"], e.svc.Degraded())
	}
}

// webhookBridge stands in for webhook-receiver: it takes the sandbox's webhook
// deliveries and publishes one HubSpotEvent per event, as webhook-receiver does
// (subject hubspot.v1.<portal>.<object>.<event>, Nats-Msg-Id hs:<portal>:<eventId>).
func (e *env) webhookBridge(t *testing.T, subscriptions ...[2]string) {
	t.Helper()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		events, err := hubspot.ParseWebhookEvents(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, ev := range events {
			portalID := strconv.FormatInt(ev.PortalID, 10)
			id := "hs:" + portalID + ":" + strconv.FormatInt(ev.EventID, 10)
			msg := &hubspotv1.HubSpotEvent{
				Meta:    &eventsv1.EventMeta{EventId: id, PortalId: portalID, OccurredAt: timestamppb.New(ev.OccurredAt.Time())},
				EventId: ev.EventID, PortalId: ev.PortalID, SubscriptionType: ev.SubscriptionType, ObjectId: ev.ObjectID,
				OccurredAt: timestamppb.New(ev.OccurredAt.Time()), PropertyName: ev.PropertyName, PropertyValue: ev.PropertyValue,
				ChangeSource: ev.ChangeSource, PrimaryObjectId: ev.PrimaryObjectID, MergedObjectIds: ev.MergedObjectIDs,
				NewObjectId: ev.NewObjectID, AssociationType: ev.AssociationType, FromObjectId: ev.FromObjectID, ToObjectId: ev.ToObjectID,
			}
			m, err := natsx.NewMsg(r.Context(), natsx.HubSpotEventSubject(portalID, ev.ObjectType(), ev.EventKind()), id, msg)
			if err == nil {
				_, err = e.js.PublishMsg(r.Context(), m)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
	}))
	t.Cleanup(hook.Close)
	app := e.hs.Server.AddApp(hubspottest.App{TargetURL: hook.URL, Portals: []int64{e.sb.ID()}})
	for _, s := range subscriptions {
		body, _ := json.Marshal(map[string]any{"eventType": s[0], "propertyName": s[1], "active": true})
		res, err := http.Post(fmt.Sprintf("%s/webhooks/v3/%d/subscriptions", e.hs.Server.URL, app), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("subscribe %v: %d %s", s, res.StatusCode, out)
		}
	}
}

func (e *env) resolve(t *testing.T, domain string) *mappingv1.AccountAnswer {
	t.Helper()
	res, err := e.mapping.ResolveAccount(context.Background(), &mappingv1.ResolveAccountRequest{PortalId: e.portal, Account: &mappingv1.AccountQuery{Domain: domain}})
	if err != nil {
		t.Fatalf("ResolveAccount(%s): %v", domain, err)
	}
	return res.GetAnswer()
}

// A domain changed in HubSpot's UI reaches the mirror through the webhook path within
// seconds; HubSpot search is off for mirrored misses, so only the webhook can teach the
// matcher the new domain. Deletions and merges take companies out of the index.
func TestUIChangesReachTheMirrorThroughWebhooks(t *testing.T) {
	t.Parallel()
	e := start(t, options{cfg: func(c *matcher.Config) { c.SearchMirroredMisses = false }})
	co := e.sb.SeedCompanies(
		map[string]string{"name": "Renamed", "domain": "old-name.com"},
		map[string]string{"name": "Doomed", "domain": "doomed.com"},
		map[string]string{"name": "Survivor", "domain": "survivor.com"},
		map[string]string{"name": "Merged away", "domain": "merged-away.com"},
	)
	e.sync(t)
	e.webhookBridge(t, [2]string{"company.propertyChange", "domain"}, [2]string{"company.deletion", ""}, [2]string{"company.merge", ""})
	if a := e.resolve(t, "old-name.com"); a.GetCompany().GetCompanyId() != co[0] {
		t.Fatalf("before: %v", a)
	}
	if err := e.sb.UIEdit(hubspottest.Companies, co[0], map[string]string{"domain": "new-name.com"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the new domain to match", func() bool {
		return e.resolve(t, "new-name.com").GetCompany().GetCompanyId() == co[0]
	})
	if a := e.resolve(t, "old-name.com"); a.GetCompany() != nil {
		t.Fatalf("old domain still matches: %v", a)
	}

	hc := e.hs.MustClient(t, e.portal)
	if err := hc.Archive(context.Background(), hubspot.Companies, co[1]); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"primaryObjectId":%q,"objectIdToMerge":%q}`, co[2], co[3])
	req, _ := http.NewRequest(http.MethodPost, e.hs.Server.URL+"/crm/v3/objects/companies/merge", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.sb.Token())
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("merge: %d", res.StatusCode)
	}
	testenv.Eventually(t, 10*time.Second, "the deleted and merged companies to leave the index", func() bool {
		return e.resolve(t, "doomed.com").GetCompany() == nil &&
			e.resolve(t, "merged-away.com").GetCompany().GetCompanyId() != co[3]
	})
	if a := e.resolve(t, "survivor.com"); a.GetCompany().GetCompanyId() != co[2] {
		t.Fatalf("the merge's survivor: %v", a)
	}
}

// A company created moments ago is not in search yet (index lag): the first signal finds
// nothing and the negative answer is cached; the creation webhook re-reads the company
// with the (consistent) batch read API, drops the negative answer, and the next signal
// matches.
func TestSearchIndexLagIsBridgedByTheCreationWebhook(t *testing.T) {
	t.Parallel()
	e := start(t, options{lag: time.Hour})
	e.webhookBridge(t, [2]string{"company.creation", ""})
	hc := e.hs.MustClient(t, e.portal)
	created, err := hc.Create(context.Background(), hubspot.Companies, hubspot.CreateInput{Properties: map[string]string{"name": "Fresh", "domain": "fresh-lag.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if a := e.resolve(t, "fresh-lag.com"); a.GetCompany() != nil && a.GetCompany().GetCompanyId() == created.ID {
		// The webhook was faster than this call; nothing to prove. Should not happen
		// with a 5ms flush, but the outcome is still correct.
		t.Log("the creation webhook landed before the first look-up")
	}
	testenv.Eventually(t, 10*time.Second, "the created company to match", func() bool {
		return e.resolve(t, "fresh-lag.com").GetCompany().GetCompanyId() == created.ID
	})
	e.publish(t, sig{id: "fresh", domain: "fresh-lag.com"})
	if got := e.matched(t, 1, 10*time.Second)["fresh"]; got.GetCompany().GetCompanyId() != created.ID {
		t.Fatalf("signal: %v", got)
	}
}

func TestScheduledReadsFullThenIncrementalWithProgress(t *testing.T) {
	t.Parallel()
	clock := testenv.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	e := start(t, options{sync: true, clock: clock, cfg: func(c *matcher.Config) { c.SearchMirroredMisses = false }})
	e.sb.Generate(hubspottest.GenerateOptions{Companies: 300, ContactsPerCompany: 1, DealsPerCompany: 1, AliasRate: 0.3, Seed: 9})
	type progress struct {
		Ready   bool                      `json:"ready"`
		Runs    map[string]map[string]any `json:"runs"`
		Records map[string]int64          `json:"records"`
	}
	get := func() progress {
		t.Helper()
		res, err := http.Get("http://" + e.svc.AdminAddr() + "/v1/portals/" + e.portal + "/mirror")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var p progress
		if res.StatusCode == http.StatusOK {
			_ = json.NewDecoder(res.Body).Decode(&p)
		}
		return p
	}
	testenv.Eventually(t, 30*time.Second, "the first full read", func() bool { return get().Ready })
	p := get()
	if p.Records["companies"] != 300 || p.Records["contacts"] != 300 || p.Records["deals"] != 300 {
		t.Fatalf("records = %v", p.Records)
	}
	full := p.Runs["companies:full"]
	if full["records"].(float64) != 300 || full["cursor"] == "" || full["duration"] == "" || full["mode"] != "full" {
		t.Fatalf("full run = %v", full)
	}
	// A change in HubSpot, then the hourly read.
	id := e.sb.IDs(hubspottest.Companies)[7]
	clock.Advance(time.Minute)
	if err := e.sb.UIEdit(hubspottest.Companies, id, map[string]string{"domain": "hourly-change.com"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	// Wait for the run record, not for the answer: the webhook path may bring the change
	// first.
	var inc map[string]any
	testenv.Eventually(t, 30*time.Second, "the incremental read", func() bool {
		inc = get().Runs["companies"]
		return inc["mode"] == "incremental"
	})
	if inc["records"].(float64) < 1 || inc["error"] != nil {
		t.Fatalf("incremental run = %v", inc)
	}
	if got := e.resolve(t, "hourly-change.com").GetCompany().GetCompanyId(); got != id {
		t.Fatalf("hourly-change.com resolves to %q after the incremental read, want %s", got, id)
	}
}

// Redis goes away mid-stream: signals keep being matched (straight from HubSpot), health
// says degraded, nothing crashes; Redis comes back empty (a restart without persistence):
// the matcher notices, reads the CRM again and matches from the mirror.
func TestRedisOutageMidStream(t *testing.T) {
	t.Parallel()
	e := start(t, options{sync: true, proxied: true})
	e.sb.Generate(hubspottest.GenerateOptions{Companies: 120, Seed: 4})
	var domains []string
	want := map[string]string{}
	for _, id := range e.sb.IDs(hubspottest.Companies) {
		p, _ := e.sb.Object(hubspottest.Companies, id)
		if _, dup := want[p["domain"]]; !dup {
			domains = append(domains, p["domain"])
			want[p["domain"]] = id
		}
	}
	ready := func() bool {
		res, err := http.Get("http://" + e.svc.AdminAddr() + "/v1/portals/" + e.portal + "/mirror")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var p struct{ Ready bool }
		_ = json.NewDecoder(res.Body).Decode(&p)
		return p.Ready
	}
	testenv.Eventually(t, 30*time.Second, "the first full read", ready)
	readyz := func() string {
		res, err := http.Get("http://" + e.svc.AdminAddr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("readyz %d: %s", res.StatusCode, b)
		}
		return string(b)
	}
	mirrorHealth := func() healthpb.HealthCheckResponse_ServingStatus {
		res, err := e.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: matcher.MirrorHealthService})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return res.GetStatus()
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	published := 0
	var mu sync.Mutex
	wg.Add(1)
	go func() { // a steady stream of signals through the whole test
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e.publish(t, sig{id: fmt.Sprintf("s%d", i), domain: domains[i%len(domains)]})
			mu.Lock()
			published++
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return published }

	testenv.Eventually(t, 10*time.Second, "signals before the outage", func() bool { return count() > 100 })
	if s := readyz(); !strings.HasPrefix(s, "ok") || mirrorHealth() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("before the outage: readyz %q, mirror health %v", s, mirrorHealth())
	}
	e.proxy.Cut()
	// A restart without persistence: the mirror is gone when Redis comes back.
	if err := redistest.DeleteKeys(context.Background(), e.rdb, "sb:{"+e.portal+"}:*"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "health to say degraded", func() bool {
		return strings.HasPrefix(readyz(), "degraded") && mirrorHealth() == healthpb.HealthCheckResponse_NOT_SERVING
	})
	during := count()
	matchedBefore := e.matchedCount(t)
	testenv.Eventually(t, 20*time.Second, "signals matched during the outage", func() bool {
		return count() > during+150 && e.matchedCount(t) > matchedBefore+150
	})
	if !e.svc.Degraded() {
		t.Fatal("signals were matched during the outage, but not without Redis")
	}
	e.proxy.Restore()
	testenv.Eventually(t, 10*time.Second, "health to recover", func() bool {
		return strings.HasPrefix(readyz(), "ok") && mirrorHealth() == healthpb.HealthCheckResponse_SERVING
	})
	testenv.Eventually(t, 30*time.Second, "the mirror to be rebuilt", ready)
	after := count()
	testenv.Eventually(t, 20*time.Second, "signals after the outage", func() bool { return count() > after+100 })
	close(stop)
	wg.Wait()

	got := e.matched(t, count(), 60*time.Second)
	for i := range count() {
		ev := got[fmt.Sprintf("s%d", i)]
		d := domains[i%len(domains)]
		if ev.GetCompany().GetCompanyId() != want[d] {
			t.Fatalf("signal s%d (%s): company %v, want %s", i, d, ev.GetCompany(), want[d])
		}
	}
	if st := e.svc.Resolver().Stats(); st.SearchCalls == 0 {
		t.Errorf("no HubSpot searches: the outage was not served from HubSpot (%+v)", st)
	}
	t.Logf("%d signals, %d during the outage; resolver %+v", count(), after-during, e.svc.Resolver().Stats())
}
