package scoresync_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/events/v1"
	mappingv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/mapping/v1"
	scoresv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scores/v1"
	scoresyncv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scoresync/v1"
	"github.com/signalbridge/signalbridge/libs/grpcx/grpcxtest"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/redisx"
	"github.com/signalbridge/signalbridge/libs/redisx/redistest"
	scoresync "github.com/signalbridge/signalbridge/services/score-sync"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/intake"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/mappingtest"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

// clock is the tests' time: real time shifted by an offset and optionally sped up.
type clock struct {
	mu     sync.Mutex
	base   time.Time // fake time at realAt
	realAt time.Time
	speed  float64
}

func newClock(start time.Time, speed float64) *clock {
	return &clock{base: start, realAt: time.Now(), speed: speed}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Duration(float64(time.Since(c.realAt)) * c.speed))
}

// Set jumps to t.
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.realAt = t, time.Now()
}

// harness is one embedded NATS server, the real Redis, a HubSpot sandbox and an in-memory
// MappingService, shared by the service instances of one test.
type harness struct {
	nats    *natstest.Server
	js      jetstream.JetStream
	rdb     *redis.Client
	hs      *hubspottest.Server
	mapping *mappingtest.Server
	mapConn mappingv1.MappingServiceClient
	pstore  *portal.Store
	portals *portal.Registry
	clock   *clock
}

func newHarness(t *testing.T, clk *clock) *harness {
	t.Helper()
	if clk == nil {
		clk = newClock(time.Now(), 1)
	}
	h := &harness{clock: clk, mapping: mappingtest.New()}
	h.nats = natstest.Run(t)
	h.js = h.nats.JetStream(t)
	h.rdb = redistest.TestClient(t)
	h.hs = hubspottest.NewTest(t, hubspottest.Options{Clock: clk.Now, ImportDelay: 5 * time.Millisecond})
	conn := grpcxtest.NewInMemory(t, func(s *grpc.Server) { mappingv1.RegisterMappingServiceServer(s, h.mapping) })
	h.mapConn = mappingv1.NewMappingServiceClient(conn)
	kv, err := h.js.KeyValue(t.Context(), natsx.BucketPortals)
	if err != nil {
		t.Fatal(err)
	}
	h.pstore = portal.NewStore(kv)
	h.portals, err = portal.Watch(t.Context(), kv, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.portals.Close)
	return h
}

// tportal is one HubSpot portal under test.
type tportal struct {
	id        string
	sb        *hubspottest.Portal
	companies []string // HubSpot ids, company i has domain domain(i)
}

func (p *tportal) domain(i int) string { return fmt.Sprintf("co%04d-%s.example.com", i, p.id) }

// addPortal creates a sandbox portal with n companies, maps their domains in the
// MappingService and stores the portal's config (scoreSync is extra YAML under score_sync).
func (h *harness) addPortal(t *testing.T, n int, scoreSync string, opts hubspottest.PortalOptions) *tportal {
	t.Helper()
	id := 9_000_000_000 + rand.Int64N(999_999_999)
	opts.ID = id
	if opts.Tier == "" {
		opts.Tier = "enterprise"
	}
	p := &tportal{id: strconv.FormatInt(id, 10), sb: h.hs.AddPortal(opts)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = redistest.DeleteKeys(ctx, h.rdb, redisx.Key(p.id, "*"))
	})
	recs := make([]map[string]string, n)
	for i := range recs {
		recs[i] = map[string]string{"name": fmt.Sprintf("Company %d", i), "domain": p.domain(i)}
	}
	p.companies = p.sb.SeedCompanies(recs...)
	for i, cid := range p.companies {
		h.mapping.Set(p.id, p.domain(i), cid)
	}
	cfg, err := portal.Parse(fmt.Appendf(nil, `portal_id: %q
name: "Portal %s"
hubspot: { auth: { type: private_app, secret: HUBSPOT_TOKEN }, tier: enterprise }
score_sync:
  enabled: true
%s
`, p.id, p.id, scoreSync))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.pstore.Put(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "portal config", func() bool { _, ok := h.portals.Get(p.id); return ok })
	return p
}

// instance is one running score-sync service (one replica).
type instance struct {
	svc    *scoresync.Service
	client scoresyncv1.ScoreSyncServiceClient
	nc     *nats.Conn
	rdb    *redis.Client
	cancel context.CancelFunc
	done   chan error
	// crashed instances may end Run with an error.
	crashed  bool
	stopOnce sync.Once
}

type instanceOptions struct {
	config   func(*scoresync.Config)
	governor *quota.Governor
	// ownRedis gives the instance a Redis client of its own (so a test can cut it off).
	ownRedis bool
}

func testConfig() scoresync.Config {
	return scoresync.Config{
		GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Replica: "test",
		IntakeBatch: 1000, IntakeLinger: 20 * time.Millisecond, CompactParts: 16,
		LockTTL: 2 * time.Second, SchedulerTick: 20 * time.Millisecond, MaxRuns: 2,
		MappingBatch: 1000, MappingWorkers: 2, MappingTimeout: 10 * time.Second,
		BatchWorkers: 4, ImportChunkRows: 100_000, ImportConcurrency: 2,
		ImportPollInterval: 10 * time.Millisecond, ImportPollMax: 50 * time.Millisecond, ImportTimeout: time.Minute,
		ConfirmFlushRows: 5000, RunsKept: 100, ShutdownTimeout: 10 * time.Second,
	}
}

func (h *harness) start(t *testing.T, o instanceOptions) *instance {
	t.Helper()
	cfg := testConfig()
	if o.config != nil {
		o.config(&cfg)
	}
	nc := h.nats.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	rdb := h.rdb
	if o.ownRedis {
		rdb = redistest.TestClient(t)
	}
	factory := func(portalID string) (*hubspot.Client, error) {
		id, err := strconv.ParseInt(portalID, 10, 64)
		if err != nil {
			return nil, err
		}
		p, ok := h.hs.Portal(id)
		if !ok {
			return nil, fmt.Errorf("no sandbox portal %s", portalID)
		}
		return hubspot.New(hubspot.Config{BaseURL: h.hs.URL, PortalID: id, Auth: hubspot.BearerToken(p.Token()),
			Governor: o.governor, MaxRetries: 2, RetryBaseDelay: 5 * time.Millisecond, RetryMaxDelay: 50 * time.Millisecond,
			Now: h.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	}
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("SCORESYNC_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc, err := scoresync.New(cfg, scoresync.Deps{
		NC: nc, JS: js, Portals: h.portals, Redis: rdb, HubSpot: factory, Mapping: h.mapConn,
		Logger: logger, Meter: noop.NewMeterProvider(), Tracer: tracenoop.NewTracerProvider(), Now: h.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{svc: svc, nc: nc, rdb: rdb, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- svc.Run(ctx) }()
	cc, err := grpc.NewClient(svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	in.client = scoresyncv1.NewScoreSyncServiceClient(cc)
	t.Cleanup(func() {
		_ = cc.Close()
		in.stop(t)
	})
	waitFor(t, "service ready", func() bool {
		_, err := in.client.ListRuns(t.Context(), &scoresyncv1.ListRunsRequest{PortalId: "1"})
		return err == nil
	})
	return in
}

// stop shuts the instance down (idempotent) and checks Run's result.
func (in *instance) stop(t *testing.T) {
	in.stopOnce.Do(func() {
		in.cancel()
		select {
		case err := <-in.done:
			if err != nil && !in.crashed {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return")
		}
	})
}

// score is one account's score as a source sends it.
type score struct {
	domain   string
	intent   float64
	strength scoresv1.IntentStrength
	trend    scoresv1.IntentTrend
	icp      float64
	grade    scoresv1.FitGrade
	at       time.Time
}

// scoreFor is a deterministic score of account i in "version" v.
func scoreFor(domain string, i, v int, at time.Time) score {
	return score{
		domain:   domain,
		intent:   float64((i*7+v*13)%10000) / 100,
		strength: scoresv1.IntentStrength(1 + (i+v)%5),
		trend:    scoresv1.IntentTrend(1 + (i*3+v)%6),
		icp:      float64((i*11+v*5)%100) + 0.25,
		grade:    scoresv1.FitGrade(1 + (i+2*v)%5),
		at:       at,
	}
}

// scoreAll scores the portal's first n companies (version v, scored at at): by company index,
// and as one batch to publish.
func (p *tportal) scoreAll(n, v int, at time.Time) (map[int]score, []score) {
	want := make(map[int]score, n)
	batch := make([]score, 0, n)
	for i := range n {
		want[i] = scoreFor(p.domain(i), i, v, at)
		batch = append(batch, want[i])
	}
	return want, batch
}

func (h *harness) publish(t *testing.T, portalID string, scores ...score) {
	t.Helper()
	for _, s := range scores {
		id := fmt.Sprintf("score:%s:%s:%d", portalID, s.domain, s.at.UnixMilli())
		msg, err := natsx.NewMsg(t.Context(), natsx.ScoreUpdatedSubject(portalID), id, &scoresv1.ScoreUpdated{
			Meta: &eventsv1.EventMeta{EventId: id, PortalId: portalID},
			Score: &scoresv1.AccountScore{Domain: s.domain, IntentScore: s.intent, IntentStrength: s.strength, IntentTrend: s.trend,
				IcpFitScore: s.icp, IcpFitGrade: s.grade, ScoredAt: timestamppb.New(s.at)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	h.waitIntake(t)
}

// waitIntake waits until the intake consumer has stored everything published so far.
func (h *harness) waitIntake(t *testing.T) {
	t.Helper()
	waitFor(t, "intake caught up", func() bool {
		c, err := h.js.Consumer(t.Context(), natsx.StreamScores, intake.DefaultDurable)
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// expected renders a score the way the managed properties hold it.
func expected(s score) string {
	strength := map[scoresv1.IntentStrength]string{1: "none", 2: "low", 3: "medium", 4: "high", 5: "very_high"}[s.strength]
	trend := map[scoresv1.IntentTrend]string{1: "none", 2: "new", 3: "surging", 4: "heating", 5: "neutral", 6: "cooling"}[s.trend]
	grade := map[scoresv1.FitGrade]string{1: "a", 2: "b", 3: "c", 4: "d", 5: "none"}[s.grade]
	return fmt.Sprintf("%s|%s|%s|%s|%s", strconv.FormatFloat(s.intent, 'f', -1, 64), strength, trend,
		strconv.FormatFloat(s.icp, 'f', -1, 64), grade)
}

// values reads what HubSpot holds for company i, in the format of expected.
func (p *tportal) values(t *testing.T, i int) string {
	t.Helper()
	props, ok := p.sb.Object(hubspottest.Companies, p.companies[i])
	if !ok {
		t.Fatalf("company %s missing", p.companies[i])
	}
	return strings.Join([]string{props["sb_intent_score"], props["sb_intent_strength"], props["sb_intent_trend"],
		props["sb_icp_fit_score"], props["sb_icp_fit_grade"]}, "|")
}

// checkValues compares HubSpot with the expected scores (index → score).
func (p *tportal) checkValues(t *testing.T, want map[int]score) {
	t.Helper()
	bad := 0
	keys := make([]int, 0, len(want))
	for i := range want {
		keys = append(keys, i)
	}
	sort.Ints(keys)
	for _, i := range keys {
		if got, w := p.values(t, i), expected(want[i]); got != w {
			if bad++; bad <= 5 {
				t.Errorf("company %d (%s): HubSpot has %q, want %q", i, p.domain(i), got, w)
			}
		}
	}
	if bad > 5 {
		t.Errorf("… %d companies differ in all", bad)
	}
}

func (in *instance) trigger(t *testing.T, portalID string, mode scoresyncv1.SyncMode) *scoresyncv1.SyncRun {
	t.Helper()
	var res *scoresyncv1.TriggerSyncResponse
	waitFor(t, "trigger accepted", func() bool {
		var err error
		res, err = in.client.TriggerSync(t.Context(), &scoresyncv1.TriggerSyncRequest{PortalId: portalID, Mode: mode})
		if status.Code(err) == codes.FailedPrecondition {
			return false // a run is still in progress (or its lock not yet expired)
		}
		if err != nil {
			t.Fatalf("trigger: %v", err)
		}
		return true
	})
	return res.GetRun()
}

func (in *instance) wait(t *testing.T, portalID, runID string) *scoresyncv1.SyncRun {
	t.Helper()
	var run *scoresyncv1.SyncRun
	waitFor(t, "run "+runID+" finished", func() bool {
		res, err := in.client.GetRun(t.Context(), &scoresyncv1.GetRunRequest{PortalId: portalID, RunId: runID})
		if err != nil {
			t.Fatalf("get run: %v", err)
		}
		run = res.GetRun()
		return run.GetState() != scoresyncv1.RunState_RUN_STATE_RUNNING
	})
	return run
}

func (in *instance) sync(t *testing.T, portalID string, mode scoresyncv1.SyncMode) *scoresyncv1.SyncRun {
	t.Helper()
	return in.wait(t, portalID, in.trigger(t, portalID, mode).GetRunId())
}

// sentTable opens the sent-state table on the harness's own connection.
func (h *harness) sentTable(t *testing.T) *store.Table {
	t.Helper()
	kv, err := h.js.KeyValue(t.Context(), natsx.BucketScoreState)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := h.js.ObjectStore(t.Context(), natsx.BucketScoreSync)
	if err != nil {
		t.Fatal(err)
	}
	return store.NewTable(store.TableSent, kv, obj, nil)
}

func mustKV(t *testing.T, h *harness) jetstream.KeyValue {
	t.Helper()
	kv, err := h.js.KeyValue(t.Context(), natsx.BucketSyncState)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func mustKVBucket(t *testing.T, h *harness, name string) jetstream.KeyValue {
	t.Helper()
	kv, err := h.js.KeyValue(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func mustObj(t *testing.T, h *harness) jetstream.ObjectStore {
	t.Helper()
	obj, err := h.js.ObjectStore(t.Context(), natsx.BucketScoreSync)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(15 * time.Millisecond)
	}
}

func summary(r *scoresyncv1.SyncRun) string {
	return fmt.Sprintf("%s %s considered=%d unmatched=%d changed=%d sent=%d confirmed=%d failed=%d calls=%d imports=%d msg=%q",
		r.GetMode(), r.GetState(), r.GetAccountsConsidered(), r.GetAccountsUnmatched(), r.GetAccountsChanged(), r.GetAccountsSent(),
		r.GetAccountsConfirmed(), r.GetAccountsFailed(), r.GetHubspotCalls(), len(r.GetImportIds()), r.GetMessage())
}
