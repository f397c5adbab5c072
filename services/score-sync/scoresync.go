// Package scoresync is the score-sync service: it keeps the latest score of every account,
// and on each portal's schedule (or on TriggerSync) writes Intent Score, Intent Strength,
// Intent Trend, ICP Fit Score and ICP Fit Grade onto the portal's HubSpot companies — the
// first run in full, later runs only what changed since HubSpot last confirmed it.
//
// # State, and why it lives where it does
//
// A portal has up to millions of accounts, so neither the scores nor what was sent are kept in
// process memory between runs, nor as one KV key per account (a JetStream KV key is a subject,
// and the server keeps per-subject state in memory: millions per portal times thousands of
// portals does not fit). Both are log-structured tables (internal/store.Table):
//
//   - rows sorted by key are written in immutable "parts", objects in the JetStream object store
//     bucket score-sync (natsx.BucketScoreSync, declared in the shared topology and created by
//     provisioning like the streams and KV buckets);
//   - each portal's list of parts (its manifest) is a key of the KV bucket score-state, changed
//     only by compare-and-set; readers merge the parts, the highest row version winning;
//   - compaction merges a portal's parts into one under the portal's run lock.
//
// The scores table (key = domain, version = scored_at) is fed by the durable consumer
// score-sync-scores on the SCORES stream: a batch of up to Config.IntakeBatch events becomes
// one part per portal, and the events are acknowledged only once their part is listed, so an
// acknowledged score is on disk in JetStream (replicated like any stream), survives restarts,
// and outlives the SCORES stream's 7-day retention. Undecodable events go to the DLQ.
//
// The sent table (key = company id, version = confirmation time) holds, per company, the
// values HubSpot confirmed (a 207 result without error for that input, or an import that
// finished DONE without a row error for it) and a fingerprint of the property mapping they were
// written with. Confirmations are appended while a run goes (every Config.ConfirmFlushRows),
// so a crash or a failed import chunk leaves exactly the unconfirmed companies — plus at most
// one unflushed group — for the next run, which computes its delta against this table and so
// resends them; nothing is skipped.
//
// A run loads the portal's scores into compact columns (about 50 bytes per account plus the
// domain), resolves companies through the matcher's MappingService (1000 accounts per call),
// keeps one account per company (the most recently scored), compares with the sent table
// (loaded as two sorted uint64 columns) and writes the difference: below the portal's
// score_sync.import_threshold through batch updates of 100 at the quota governor's bulk
// priority, otherwise through CRM imports (UPDATE by record id) of up to Config.ImportChunkRows
// rows, polled until done, with per-row errors mapped back to companies. Memory is bounded by
// one portal's run, and released after it.
//
// # Properties
//
// Each run first makes the portal's properties ready (idempotent: two reads when nothing is
// missing): the group score_sync.group and the five managed properties <prefix>intent_score
// (number), <prefix>intent_strength (select Very High, High, Medium, Low, None),
// <prefix>intent_trend (select Surging, Heating, Neutral, Cooling, New, None),
// <prefix>icp_fit_score (number) and <prefix>icp_fit_grade (select A, B, C, D, —). A score can
// instead go to existing properties: the portal config's field_mappings entry for
// "account.<score>" (for example account.intent_strength) with company targets and strategy
// overwrite. Such a property is checked before anything is written — it must exist, be
// writable, be a number for the two scores, and a single-choice select or radio holding every
// option (matched by internal value or label) or a text property for the three others — and a
// run with an incompatible mapping fails with a message naming each property and what is
// wrong. Scores are written with two decimals.
//
// # Coordination
//
// One run per portal at a time, across replicas: a Redis lock with a TTL, renewed while the run
// lasts; a run whose lock is lost stops. Runs are recorded (SyncRun, protojson) and the
// scheduler's per-portal state kept in the KV bucket sync-state; the scheduler claims a slot by
// compare-and-set on that state under the lock, so a slot runs once. When HubSpot's daily quota
// is exhausted the run stops sending, is recorded PAUSED with the reset time, and the
// scheduler resumes it (as a delta run) after the reset.
package scoresync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	mappingv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/mapping/v1"
	"github.com/signalbridge/signalbridge/libs/grpcx"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/service"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/engine"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/grpcapi"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/intake"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

// Version is the service version.
const Version = "0.1.0"

// Config is the score-sync service's configuration (environment prefix SB_SCORESYNC_).
type Config struct {
	GRPCAddr  string `env:"GRPC_ADDR" default:":9000" desc:"gRPC ScoreSyncService listen address"`
	AdminAddr string `env:"ADMIN_ADDR" default:":9090" desc:"/metrics, /healthz and /readyz listen address"`
	// Replica names this process in locks and logs; empty means the host name.
	Replica string `env:"REPLICA" desc:"this replica's name in locks and logs (default: host name)"`

	// ObjectBucket overrides the object store bucket; empty means natsx.BucketScoreSync.
	ObjectBucket string `env:"OBJECT_BUCKET" desc:"JetStream object store bucket of the score and sent-state parts (empty: the topology's score-sync)"`

	IntakeBatch  int           `env:"INTAKE_BATCH" default:"10000" desc:"most ScoreUpdated events folded into one part"`
	IntakeLinger time.Duration `env:"INTAKE_LINGER" default:"1s" desc:"how long intake waits to fill a batch"`
	CompactParts int           `env:"COMPACT_PARTS" default:"16" desc:"compact a portal's scores when intake left this many parts"`

	LockTTL       time.Duration `env:"LOCK_TTL" default:"30s" desc:"per-portal run lock TTL (renewed every third)"`
	SchedulerTick time.Duration `env:"SCHEDULER_TICK" default:"30s" desc:"how often portal schedules are checked"`
	FullEvery     time.Duration `env:"FULL_EVERY" default:"0s" desc:"force a full run when the last one is older (0: never)"`
	MaxRuns       int           `env:"MAX_RUNS" default:"2" desc:"runs of different portals this replica runs at once (bounds its memory; other replicas take the rest)"`

	MappingBatch   int           `env:"MAPPING_BATCH" default:"1000" desc:"accounts per MappingService call (at most 1000)"`
	MappingWorkers int           `env:"MAPPING_WORKERS" default:"4" desc:"MappingService calls in flight"`
	MappingTimeout time.Duration `env:"MAPPING_TIMEOUT" default:"30s" desc:"timeout of one MappingService call"`

	BatchWorkers       int           `env:"BATCH_WORKERS" default:"4" desc:"HubSpot batch update calls in flight"`
	ImportChunkRows    int           `env:"IMPORT_CHUNK_ROWS" default:"100000" desc:"most rows per CRM import"`
	ImportConcurrency  int           `env:"IMPORT_CONCURRENCY" default:"2" desc:"CRM imports in flight per run"`
	ImportPollInterval time.Duration `env:"IMPORT_POLL_INTERVAL" default:"5s" desc:"first wait before polling an import (grows by half up to IMPORT_POLL_MAX)"`
	ImportPollMax      time.Duration `env:"IMPORT_POLL_MAX" default:"1m" desc:"longest wait between import polls"`
	ImportTimeout      time.Duration `env:"IMPORT_TIMEOUT" default:"6h" desc:"give up on one import after this long"`
	ConfirmFlushRows   int           `env:"CONFIRM_FLUSH_ROWS" default:"5000" desc:"confirmations stored at once while a run goes"`
	RunsKept           int           `env:"RUNS_KEPT" default:"100" desc:"run records kept per portal"`

	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"20s" desc:"budget for stopping runs and intake on shutdown"`
}

// Validate checks the values Load cannot.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.IntakeBatch >= 1 && c.IntakeBatch <= 100_000, "SB_SCORESYNC_INTAKE_BATCH: %d is outside 1..100000", c.IntakeBatch)
	check(c.IntakeLinger > 0, "SB_SCORESYNC_INTAKE_LINGER: %s must be positive", c.IntakeLinger)
	check(c.CompactParts >= 2, "SB_SCORESYNC_COMPACT_PARTS: %d is below 2", c.CompactParts)
	check(c.LockTTL >= time.Second, "SB_SCORESYNC_LOCK_TTL: %s is below 1s", c.LockTTL)
	check(c.SchedulerTick > 0, "SB_SCORESYNC_SCHEDULER_TICK: %s must be positive", c.SchedulerTick)
	check(c.FullEvery >= 0, "SB_SCORESYNC_FULL_EVERY: %s is negative", c.FullEvery)
	check(c.MaxRuns >= 1 && c.MaxRuns <= 64, "SB_SCORESYNC_MAX_RUNS: %d is outside 1..64", c.MaxRuns)
	check(c.MappingBatch >= 1 && c.MappingBatch <= 1000, "SB_SCORESYNC_MAPPING_BATCH: %d is outside 1..1000", c.MappingBatch)
	check(c.MappingWorkers >= 1 && c.MappingWorkers <= 64, "SB_SCORESYNC_MAPPING_WORKERS: %d is outside 1..64", c.MappingWorkers)
	check(c.MappingTimeout > 0, "SB_SCORESYNC_MAPPING_TIMEOUT: %s must be positive", c.MappingTimeout)
	check(c.BatchWorkers >= 1 && c.BatchWorkers <= 64, "SB_SCORESYNC_BATCH_WORKERS: %d is outside 1..64", c.BatchWorkers)
	check(c.ImportChunkRows >= 1 && c.ImportChunkRows <= 1_000_000, "SB_SCORESYNC_IMPORT_CHUNK_ROWS: %d is outside 1..1000000 (HubSpot takes about a million rows per file)", c.ImportChunkRows)
	check(c.ImportConcurrency >= 1 && c.ImportConcurrency <= 16, "SB_SCORESYNC_IMPORT_CONCURRENCY: %d is outside 1..16", c.ImportConcurrency)
	check(c.ImportPollInterval > 0 && c.ImportPollMax >= c.ImportPollInterval, "SB_SCORESYNC_IMPORT_POLL_INTERVAL (%s) must be positive and at most SB_SCORESYNC_IMPORT_POLL_MAX (%s)", c.ImportPollInterval, c.ImportPollMax)
	check(c.ImportTimeout > 0, "SB_SCORESYNC_IMPORT_TIMEOUT: %s must be positive", c.ImportTimeout)
	check(c.ConfirmFlushRows >= 1, "SB_SCORESYNC_CONFIRM_FLUSH_ROWS: %d is below 1", c.ConfirmFlushRows)
	check(c.RunsKept >= 1, "SB_SCORESYNC_RUNS_KEPT: %d is below 1", c.RunsKept)
	check(c.ShutdownTimeout > 0, "SB_SCORESYNC_SHUTDOWN_TIMEOUT: %s must be positive", c.ShutdownTimeout)
	return errors.Join(errs...)
}

// Portals is the live portal configuration; *portal.Registry implements it.
type Portals interface {
	// Get returns a portal's config (shared: read-only).
	Get(portalID string) (*portal.Config, bool)
	// Portals lists the configured portal ids.
	Portals() []string
}

// Deps are what score-sync needs from its process.
type Deps struct {
	NC *nats.Conn
	JS jetstream.JetStream
	// Portals is the live portal configuration.
	Portals Portals
	// Redis holds the per-portal run locks.
	Redis redis.UniversalClient
	// HubSpot returns the client of a portal (with its quota governor and credentials).
	HubSpot func(portalID string) (*hubspot.Client, error)
	// Mapping is the matcher's MappingService.
	Mapping mappingv1.MappingServiceClient
	Logger  *slog.Logger
	Meter   metric.MeterProvider
	// Tracer traces runs and intake; the global provider when nil.
	Tracer trace.TracerProvider
	// Metrics serves /metrics on the admin listener; nil leaves it out.
	Metrics http.Handler
	// Now is the clock of schedules and records; time.Now when nil.
	Now func() time.Time
}

// Service is a bound, not yet running score-sync service.
type Service struct {
	cfg   Config
	deps  Deps
	grpc  *grpcx.Server
	admin *service.Admin

	grpcLis net.Listener

	// Set by Run before serving.
	engine *engine.Engine
	runs   *store.Runs
	ready  chan struct{}
}

// New checks deps, builds the service and binds its listeners.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("score-sync: %w", err)
	}
	var missing []string
	if deps.NC == nil {
		missing = append(missing, "NC")
	}
	if deps.JS == nil {
		missing = append(missing, "JS")
	}
	if deps.Portals == nil {
		missing = append(missing, "Portals")
	}
	if deps.Redis == nil {
		missing = append(missing, "Redis")
	}
	if deps.HubSpot == nil {
		missing = append(missing, "HubSpot")
	}
	if deps.Mapping == nil {
		missing = append(missing, "Mapping")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("score-sync: missing deps: %v", missing)
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Tracer == nil {
		deps.Tracer = otel.GetTracerProvider()
	}
	if deps.Meter == nil {
		deps.Meter = otel.GetMeterProvider()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.Replica == "" {
		cfg.Replica, _ = os.Hostname()
		if cfg.Replica == "" {
			cfg.Replica = "score-sync"
		}
	}
	s := &Service{cfg: cfg, deps: deps, ready: make(chan struct{})}
	s.grpc = grpcx.NewServer(grpcx.ServerConfig{Reflection: true, GracefulTimeout: cfg.ShutdownTimeout, Logger: deps.Logger})

	var err error
	if s.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("score-sync: grpc listen %s: %w", cfg.GRPCAddr, err)
	}
	if s.admin, err = service.ListenAdmin(cfg.AdminAddr, s.readyz, deps.Metrics); err != nil {
		s.grpcLis.Close()
		return nil, fmt.Errorf("score-sync: %w", err)
	}
	return s, nil
}

// GRPCAddr is the bound gRPC address.
func (s *Service) GRPCAddr() string { return s.grpcLis.Addr().String() }

// AdminAddr is the bound admin address.
func (s *Service) AdminAddr() string { return s.admin.Addr() }

func (s *Service) readyz(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-s.ready:
	default:
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	if !service.NATSReady(w, s.deps.NC) {
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// Run opens the buckets, starts intake, the scheduler and the gRPC server, and serves until
// ctx is done. Then it shuts down in order: gRPC stops taking calls (health NOT_SERVING
// first), the scheduler stops, intake finishes its batch, runs in progress are interrupted
// (their records say so; the next run resends what they did not get confirmed), and the admin
// listener closes last so probes see the drain.
func (s *Service) Run(ctx context.Context) error {
	log := s.deps.Logger
	defer s.grpcLis.Close()
	defer s.admin.Close()
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	scoreKV, err := s.deps.JS.KeyValue(setupCtx, natsx.BucketScoreState)
	if err != nil {
		return fmt.Errorf("score-sync: KV bucket %s (provision the topology first): %w", natsx.BucketScoreState, err)
	}
	syncKV, err := s.deps.JS.KeyValue(setupCtx, natsx.BucketSyncState)
	if err != nil {
		return fmt.Errorf("score-sync: KV bucket %s (provision the topology first): %w", natsx.BucketSyncState, err)
	}
	bucket := cmp.Or(s.cfg.ObjectBucket, natsx.BucketScoreSync)
	obj, err := s.deps.JS.ObjectStore(setupCtx, bucket)
	if err != nil {
		return fmt.Errorf("score-sync: object store %s (provision the topology first): %w", bucket, err)
	}
	scores := store.NewTable(store.TableScores, scoreKV, obj, s.deps.Now)
	sent := store.NewTable(store.TableSent, scoreKV, obj, s.deps.Now)
	s.runs = store.NewRuns(syncKV, s.cfg.RunsKept)
	s.engine, err = engine.New(engine.Options{
		Replica: s.cfg.Replica, LockTTL: s.cfg.LockTTL, FullEvery: s.cfg.FullEvery,
		Resolve:      engine.ResolveOptions{Batch: s.cfg.MappingBatch, Workers: s.cfg.MappingWorkers, Timeout: s.cfg.MappingTimeout},
		BatchWorkers: s.cfg.BatchWorkers, ImportChunkRows: s.cfg.ImportChunkRows, ImportConcurrency: s.cfg.ImportConcurrency,
		ImportPollInterval: s.cfg.ImportPollInterval, ImportPollMax: s.cfg.ImportPollMax, ImportTimeout: s.cfg.ImportTimeout,
		FlushRows: s.cfg.ConfirmFlushRows, CompactParts: s.cfg.CompactParts, SchedulerTick: s.cfg.SchedulerTick,
		MaxRuns: s.cfg.MaxRuns,
	}, engine.Deps{
		Scores: scores, Sent: sent, Runs: s.runs, Redis: s.deps.Redis, Portals: s.deps.Portals,
		HubSpot: s.deps.HubSpot, Mapping: s.deps.Mapping, Logger: log, Meter: s.deps.Meter, Tracer: s.deps.Tracer, Now: s.deps.Now,
	})
	if err != nil {
		return fmt.Errorf("score-sync: %w", err)
	}
	grpcapi.New(s.engine, s.runs, log).Register(s.grpc.Server)

	in, err := intake.Start(setupCtx, s.deps.JS, scores, intake.Options{
		Batch: s.cfg.IntakeBatch, Linger: s.cfg.IntakeLinger, OnAppend: s.engine.CompactScores,
		Logger: log, Meter: s.deps.Meter, Tracer: s.deps.Tracer,
	})
	if err != nil {
		return fmt.Errorf("score-sync: %w", err)
	}
	close(s.ready)

	g, gctx := errgroup.WithContext(ctx)
	schedCtx, stopSched := context.WithCancel(gctx)
	schedDone := make(chan struct{})
	go func() { defer close(schedDone); s.engine.Schedule(schedCtx) }()
	g.Go(s.admin.Serve)
	g.Go(func() error { return s.grpc.Serve(gctx, s.grpcLis) })
	log.Info("score-sync serving", "grpc", s.GRPCAddr(), "admin", s.AdminAddr(), "replica", s.cfg.Replica)

	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		// grpc stops itself on gctx.
		stopSched()
		<-schedDone
		errs := []error{in.Stop(shutdownCtx)}
		errs = append(errs, s.engine.Close(shutdownCtx))
		errs = append(errs, s.admin.Shutdown(shutdownCtx))
		log.Info("score-sync stopped")
		return errors.Join(errs...)
	})
	return g.Wait()
}
