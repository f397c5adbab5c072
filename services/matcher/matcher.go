// Package matcher resolves intent signals to HubSpot companies and contacts. It keeps a
// per-portal mirror of the CRM in Redis (full read, hourly incremental reads, live
// updates from HubSpot change events), consumes SignalReceived and publishes
// SignalMatched with the evidence of every answer, and serves the gRPC MappingService.
package matcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/signalbridge/signalbridge/libs/grpcx"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/service"
	"github.com/signalbridge/signalbridge/services/matcher/internal/grpcapi"
	"github.com/signalbridge/signalbridge/services/matcher/internal/mirror"
	"github.com/signalbridge/signalbridge/services/matcher/internal/pipeline"
	"github.com/signalbridge/signalbridge/services/matcher/internal/resolve"
)

// Version is the service version written into every event's producer field.
const Version = "0.1.0"

// MirrorHealthService is the gRPC health service name that reports the CRM mirror:
// NOT_SERVING while Redis is down (matching still works, straight from HubSpot).
const MirrorHealthService = "signalbridge.matcher.v1.Mirror"

// Config is the matcher service's own configuration (environment prefix SB_MATCHER_).
type Config struct {
	GRPCAddr  string `env:"GRPC_ADDR" default:":9000" desc:"gRPC MappingService listen address"`
	AdminAddr string `env:"ADMIN_ADDR" default:":9090" desc:"/metrics, /healthz, /readyz, /status and mirror progress listen address"`

	SignalConsumer string        `env:"SIGNAL_CONSUMER" default:"batch" desc:"batch (one pull consumer, hundreds of signals in flight) or natsx (natsx.Consume workers, one signal each)"`
	SignalWorkers  int           `env:"SIGNAL_WORKERS" default:"32" desc:"natsx.Consume loops of matcher-signals in natsx mode (bounds a match batch)"`
	MatchBatch     int           `env:"MATCH_BATCH" default:"1000" desc:"most signals matched and published together (one atomic batch)"`
	MatchLinger    time.Duration `env:"MATCH_LINGER" default:"1ms" desc:"how long a match batch waits for more signals"`
	MatchParallel  int           `env:"MATCH_PARALLEL" default:"3" desc:"match batches in flight at once: while one is matched, the others wait on the server (publish, fsync, acks)"`
	CRMWorkers     int           `env:"CRM_WORKERS" default:"32" desc:"parallel consume loops of matcher-crm-events"`
	CRMLinger      time.Duration `env:"CRM_LINGER" default:"20ms" desc:"how long a webhook re-read waits to share a batch read"`

	NegativeTTL          time.Duration `env:"NEGATIVE_TTL" default:"2m" desc:"how long a HubSpot 'no such company/contact' answer is cached"`
	SearchMirroredMisses bool          `env:"SEARCH_MIRRORED_MISSES" default:"true" desc:"also ask HubSpot about domains a complete mirror lacks (new domains)"`
	MissLinger           time.Duration `env:"MISS_LINGER" default:"10ms" desc:"how long a miss waits to share a HubSpot search"`
	MissWait             time.Duration `env:"MISS_WAIT" default:"5s" desc:"longest wait for HubSpot on a miss; then a mirrored portal gets the mirror's answer"`
	CacheKeys            int           `env:"CACHE_KEYS" default:"200000" desc:"domains and emails whose mirror answers a replica keeps in memory, checked against the mirror's generation on every look-up; 0: none"`

	Sync            bool          `env:"SYNC" default:"true" desc:"run the scheduled CRM reads (full, then incremental)"`
	SyncTick        time.Duration `env:"SYNC_TICK" default:"15s" desc:"how often due CRM reads are looked for"`
	FullReadEvery   time.Duration `env:"FULL_READ_EVERY" default:"24h" desc:"repeat the full read (drops records deleted without a webhook); negative: never"`
	SyncConcurrency int           `env:"SYNC_CONCURRENCY" default:"2" desc:"portals read at once by this replica"`
	IndexLag        time.Duration `env:"INDEX_LAG" default:"5m" desc:"longest HubSpot search-index lag (incremental reads re-read that much)"`

	RedisProbe      time.Duration `env:"REDIS_PROBE" default:"500ms" desc:"how often Redis is checked"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"15s" desc:"budget for draining consumers and requests on shutdown"`
}

// Validate checks the values Load cannot.
func (c Config) Validate() error {
	var errs []error
	if c.SignalConsumer != pipeline.ModeBatch && c.SignalConsumer != pipeline.ModeNatsx {
		errs = append(errs, fmt.Errorf("SB_MATCHER_SIGNAL_CONSUMER: %q, want %q or %q", c.SignalConsumer, pipeline.ModeBatch, pipeline.ModeNatsx))
	}
	if c.MatchParallel < 1 || c.MatchParallel > 64 {
		errs = append(errs, fmt.Errorf("SB_MATCHER_MATCH_PARALLEL: %d is outside 1..64", c.MatchParallel))
	}
	if c.SignalWorkers < 1 || c.SignalWorkers > 1024 {
		errs = append(errs, fmt.Errorf("SB_MATCHER_SIGNAL_WORKERS: %d is outside 1..1024", c.SignalWorkers))
	}
	if c.CRMWorkers < 1 || c.CRMWorkers > 1024 {
		errs = append(errs, fmt.Errorf("SB_MATCHER_CRM_WORKERS: %d is outside 1..1024", c.CRMWorkers))
	}
	if c.MatchBatch < 1 || c.MatchBatch > natsx.MaxBatchSize {
		errs = append(errs, fmt.Errorf("SB_MATCHER_MATCH_BATCH: %d is outside 1..%d", c.MatchBatch, natsx.MaxBatchSize))
	}
	if c.CacheKeys < 0 {
		errs = append(errs, fmt.Errorf("SB_MATCHER_CACHE_KEYS: %d is negative (0 turns the in-memory cache off)", c.CacheKeys))
	}
	if c.NegativeTTL <= 0 {
		errs = append(errs, fmt.Errorf("SB_MATCHER_NEGATIVE_TTL: %s must be positive", c.NegativeTTL))
	}
	if c.IndexLag < 0 {
		errs = append(errs, fmt.Errorf("SB_MATCHER_INDEX_LAG: %s is negative", c.IndexLag))
	}
	if c.SyncConcurrency < 1 {
		errs = append(errs, fmt.Errorf("SB_MATCHER_SYNC_CONCURRENCY: %d must be at least 1", c.SyncConcurrency))
	}
	return errors.Join(errs...)
}

// Portals is the live set of portal configurations (*portal.Registry).
type Portals interface {
	Get(portalID string) (*portal.Config, bool)
	Portals() []string
}

// Deps are what the matcher needs from its process.
type Deps struct {
	NC      *nats.Conn
	JS      jetstream.JetStream
	Portals Portals
	// Redis holds the mirror; nil runs without one (every look-up goes to HubSpot).
	Redis *redis.Client
	// HubSpot returns a portal's client: built from the portal config, its secrets and
	// the process's shared quota governor.
	HubSpot func(portalID string) (*hubspot.Client, error)
	Logger  *slog.Logger
	Meter   metric.MeterProvider
	// Tracer traces consumers, publishes and RPCs; the global provider when nil.
	Tracer trace.TracerProvider
	// Metrics serves /metrics on the admin listener; nil leaves it out.
	Metrics http.Handler
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Service is a bound, not yet running matcher.
type Service struct {
	cfg      Config
	deps     Deps
	store    *mirror.Store
	health   *resolve.Health
	resolver *resolve.Resolver
	reader   *mirror.Reader
	syncer   *mirror.Syncer
	signals  *pipeline.Signals
	crm      *pipeline.CRM
	grpc     *grpcx.Server
	admin    *service.Admin

	grpcLis net.Listener
}

// New builds the service and binds its listeners, so that their addresses are known
// before Run.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.NC == nil || deps.JS == nil || deps.Portals == nil || deps.HubSpot == nil {
		return nil, errors.New("matcher: NC, JS, Portals and HubSpot are required")
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
	log := deps.Logger
	s := &Service{cfg: cfg, deps: deps}
	clients := mirror.ClientFunc(deps.HubSpot)
	if deps.Redis != nil {
		s.store = mirror.NewStore(deps.Redis, 0)
		s.health = resolve.NewHealth(deps.Redis, cfg.RedisProbe, log)
		s.reader = mirror.NewReader(s.store, mirror.ReaderOptions{IndexLag: cfg.IndexLag, Now: deps.Now, Logger: log})
		s.syncer = mirror.NewSyncer(s.reader, deps.Portals, clients, mirror.SyncerOptions{
			Tick: cfg.SyncTick, FullEvery: cfg.FullReadEvery, Concurrency: cfg.SyncConcurrency, Now: deps.Now, Logger: log,
		})
	}
	s.resolver = resolve.New(s.store, s.health, clients, resolve.Options{
		NegativeTTL: cfg.NegativeTTL, SearchMirroredMisses: cfg.SearchMirroredMisses, Linger: cfg.MissLinger, MissWait: cfg.MissWait,
		WarmMax: warmMax(cfg.CacheKeys), Logger: log,
	})
	meter := deps.Meter.Meter("signalbridge/matcher")
	var err error
	s.signals, err = pipeline.NewSignals(deps.NC, deps.JS, s.resolver, pipeline.SignalsOptions{
		Mode: cfg.SignalConsumer, Workers: cfg.SignalWorkers, MaxBatch: cfg.MatchBatch, Linger: cfg.MatchLinger, Concurrency: cfg.MatchParallel,
		Producer: "matcher/" + Version, Now: deps.Now, Tracer: deps.Tracer, Meter: meter, MeterProvider: deps.Meter, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("matcher: %w", err)
	}
	if s.reader != nil {
		s.crm = pipeline.NewCRM(deps.NC, deps.JS, s.reader, clients, pipeline.CRMOptions{
			Workers: cfg.CRMWorkers, Linger: cfg.CRMLinger, Tracer: deps.Tracer, Logger: log,
		})
	}
	if err := s.registerMetrics(meter); err != nil {
		return nil, fmt.Errorf("matcher: metrics: %w", err)
	}

	s.grpc = grpcx.NewServer(grpcx.ServerConfig{Reflection: true, GracefulTimeout: cfg.ShutdownTimeout, Logger: log})
	grpcapi.New(s.resolver, deps.Portals, log).Register(s.grpc.Server)

	if s.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("matcher: grpc listen %s: %w", cfg.GRPCAddr, err)
	}
	if s.admin, err = service.ListenAdmin(cfg.AdminAddr, s.ready, deps.Metrics); err != nil {
		s.grpcLis.Close()
		return nil, fmt.Errorf("matcher: %w", err)
	}
	s.admin.HandleFunc("GET /status", s.status)
	s.admin.HandleFunc("GET /v1/portals/{portal}/mirror", s.mirrorState)
	return s, nil
}

// GRPCAddr is the bound gRPC address.
func (s *Service) GRPCAddr() string { return s.grpcLis.Addr().String() }

// AdminAddr is the bound admin address.
func (s *Service) AdminAddr() string { return s.admin.Addr() }

// Degraded reports whether matching runs without the Redis mirror.
func (s *Service) Degraded() bool { return s.resolver.Degraded() }

// Resolver exposes the resolver's counters (benchmarks).
func (s *Service) Resolver() *resolve.Resolver { return s.resolver }

// SyncPortal runs the CRM reads due for a portal now and waits for them (tests, tools).
func (s *Service) SyncPortal(ctx context.Context, portalID string) error {
	if s.syncer == nil {
		return errors.New("matcher: no Redis, no mirror to sync")
	}
	return s.syncer.SyncPortal(ctx, portalID)
}

// ReadNow runs one read (mirror.ModeFull or mirror.ModeIncremental) of one object of a
// portal now (tests, tools).
func (s *Service) ReadNow(ctx context.Context, portalID string, obj mirror.Object, mode string) error {
	if s.syncer == nil {
		return errors.New("matcher: no Redis, no mirror to sync")
	}
	return s.syncer.ReadNow(ctx, portalID, obj, mode)
}

// warmMax turns SB_MATCHER_CACHE_KEYS into resolve.Options.WarmMax (negative: off).
func warmMax(keys int) int {
	if keys == 0 {
		return -1
	}
	return keys
}

func (s *Service) registerMetrics(meter metric.Meter) error {
	degraded, err := meter.Int64ObservableGauge("signalbridge.matcher.degraded", metric.WithDescription("1 while Redis is down and matching runs straight from HubSpot"))
	if err != nil {
		return err
	}
	calls, err := meter.Int64ObservableCounter("signalbridge.matcher.hubspot_lookups", metric.WithDescription("HubSpot calls made for look-up misses"))
	if err != nil {
		return err
	}
	memHits, err := meter.Int64ObservableCounter("signalbridge.matcher.memory.hits", metric.WithDescription("domains and emails answered from the in-memory copy of the mirror (SB_MATCHER_CACHE_KEYS)"))
	if err != nil {
		return err
	}
	memEntries, err := meter.Int64ObservableGauge("signalbridge.matcher.memory.entries", metric.WithDescription("domains and emails in the in-memory copy of the mirror"))
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		v := int64(0)
		if s.resolver.Degraded() {
			v = 1
		}
		o.ObserveInt64(degraded, v)
		st := s.resolver.Stats()
		o.ObserveInt64(calls, st.SearchCalls+st.BatchReadCalls)
		o.ObserveInt64(memHits, st.WarmHits)
		o.ObserveInt64(memEntries, int64(st.WarmEntries))
		return nil
	}, degraded, calls, memHits, memEntries)
	return err
}

func (s *Service) ready(w http.ResponseWriter, _ *http.Request) {
	if !service.NATSReady(w, s.deps.NC) {
		return
	}
	if s.resolver.Degraded() {
		_, _ = w.Write([]byte("degraded: redis unavailable, matching straight from HubSpot\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// statusReport is the body of GET /status.
type statusReport struct {
	Status     string         `json:"status"` // ok or degraded
	Redis      string         `json:"redis"`  // up, down or absent
	RedisDown  *time.Time     `json:"redis_down_since,omitempty"`
	RedisError string         `json:"redis_error,omitempty"`
	Lookups    resolve.Stats  `json:"hubspot_lookups"`
	Portals    []string       `json:"portals"`
	Webhooks   map[string]any `json:"webhook_rereads,omitempty"`
}

func (s *Service) status(w http.ResponseWriter, _ *http.Request) {
	rep := statusReport{Status: "ok", Redis: "absent", Lookups: s.resolver.Stats(), Portals: s.deps.Portals.Portals()}
	if s.health != nil {
		rep.Redis = "up"
		if down, since, err := s.health.Status(); down {
			rep.Redis, rep.RedisDown = "down", &since
			if err != nil {
				rep.RedisError = err.Error()
			}
		}
	}
	if s.resolver.Degraded() {
		rep.Status = "degraded"
	}
	if s.crm != nil {
		st := s.crm.Stats()
		rep.Webhooks = map[string]any{"batch_reads": st.Fetches, "records": st.Keys}
	}
	writeJSON(w, http.StatusOK, rep)
}

// mirrorReport is the body of GET /v1/portals/{portal}/mirror: the mirror's state and
// the progress of the last reads (records, duration, cursor, errors).
type mirrorReport struct {
	Portal string `json:"portal"`
	mirror.State
	Records map[string]int64 `json:"records"`
}

func (s *Service) mirrorState(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("portal")
	if err := natsx.ValidToken(id); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "portal: " + err.Error()})
		return
	}
	if _, ok := s.deps.Portals.Get(id); !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "portal " + id + " is not configured"})
		return
	}
	if s.store == nil || s.resolver.Degraded() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "redis unavailable: the mirror cannot be read"})
		return
	}
	st, err := s.store.State(r.Context(), id)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	rep := mirrorReport{Portal: id, State: st, Records: map[string]int64{}}
	for _, obj := range mirror.Objects {
		n, err := s.store.Count(r.Context(), id, obj)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		rep.Records[string(obj)] = n
	}
	writeJSON(w, http.StatusOK, rep)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Run serves until ctx is done, then shuts down in order: stop consuming signals and
// change events (finishing what is in hand), stop the CRM reads, stop gRPC gracefully
// (health NOT_SERVING first), close the admin listener last so probes see the drain.
func (s *Service) Run(ctx context.Context) error {
	log := s.deps.Logger
	// Consumers get their own context: they are stopped explicitly, in order.
	cctx, ccancel := context.WithCancel(context.WithoutCancel(ctx))
	defer ccancel()
	if err := s.signals.Start(cctx); err != nil {
		return err
	}
	if s.crm != nil {
		if err := s.crm.Start(cctx); err != nil {
			_ = s.signals.Stop(cctx)
			return err
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(s.admin.Serve)
	g.Go(func() error { return s.grpc.Serve(gctx, s.grpcLis) })
	if s.health != nil {
		s.health.Probe(gctx)
		g.Go(func() error { s.health.Run(gctx); return nil })
		g.Go(func() error { s.watchMirrorHealth(gctx); return nil })
	}
	if s.syncer != nil && s.cfg.Sync {
		g.Go(func() error { return s.syncer.Run(gctx) })
	}
	log.Info("matcher serving", "grpc", s.GRPCAddr(), "admin", s.AdminAddr(), "redis", s.store != nil, "sync", s.cfg.Sync && s.syncer != nil)

	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		var errs []error
		errs = append(errs, s.signals.Stop(shutdownCtx))
		if s.crm != nil {
			errs = append(errs, s.crm.Stop(shutdownCtx))
		}
		ccancel()
		// The syncer and grpc stop on gctx; the admin server goes last.
		errs = append(errs, s.admin.Shutdown(shutdownCtx))
		log.Info("matcher stopped")
		return errors.Join(errs...)
	})
	return g.Wait()
}

// watchMirrorHealth publishes the mirror's state as the gRPC health of
// MirrorHealthService until ctx ends.
func (s *Service) watchMirrorHealth(ctx context.Context) {
	t := time.NewTicker(max(s.cfg.RedisProbe, 100*time.Millisecond))
	defer t.Stop()
	for {
		st := healthpb.HealthCheckResponse_SERVING
		if s.resolver.Degraded() {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		s.grpc.Health.SetServingStatus(MirrorHealthService, st)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
