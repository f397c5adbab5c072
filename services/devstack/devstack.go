// Package devstack assembles the whole of signalbridge in one process: an embedded NATS server
// with JetStream, a cache (Redis when a URL is given, an in-memory Redis otherwise), the HubSpot
// sandbox with demo data (unless a real HubSpot token is configured), the demo portal, and
// every selected service (ingest, webhook-receiver, matcher, score-sync), sharing one NATS
// connection, one HubSpot quota governor and one client per portal. `make run` and the
// end-to-end tests use it.
package devstack

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/signalbridge/signalbridge/libs/config"
	mappingv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/mapping/v1"
	"github.com/signalbridge/signalbridge/libs/grpcx"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/hubspot/portalclients"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/embedded"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/redisx"
	"github.com/signalbridge/signalbridge/services/ingest"
	"github.com/signalbridge/signalbridge/services/matcher"
	scoresync "github.com/signalbridge/signalbridge/services/score-sync"
	webhookrx "github.com/signalbridge/signalbridge/services/webhook-receiver"
)

// DemoAPIKey is the ingest key of the demo portal. It exists only in the demo configuration.
const DemoAPIKey = "sbk_demo_local_only"

//go:embed demo/portal.yaml
var demoPortal []byte

// Services lists what devstack can run, in start order.
var Services = []string{"ingest", "webhook-receiver", "matcher", "score-sync"}

// Config is the assembly's configuration.
type Config struct {
	// DataDir holds JetStream's files (DataDir/nats).
	DataDir string
	// NATSHost and NATSPort are where the embedded server listens (port 0: random).
	NATSHost string
	NATSPort int
	// LazyFsync turns off fsync-before-ack (faster, loses acknowledged data on an OS crash).
	LazyFsync bool
	// RedisURL selects a real Redis; empty starts an in-memory one.
	RedisURL string
	// Services to run; empty means all.
	Services []string
	// PortalFiles are extra portal YAML files to load; the demo portal is always loaded.
	PortalFiles [][]byte
	// Secrets resolves a secret's name from a portal configuration (for example
	// HUBSPOT_TOKEN_DEMO) to its value, typically from the environment. When the demo portal's
	// HubSpot token resolves to nothing, devstack starts the HubSpot sandbox with demo data and
	// points everything at it.
	Secrets func(name string) string
	// SandboxCompanies is how many demo companies the sandbox generates (default 500).
	SandboxCompanies int
	// Ingest is the ingest service's configuration.
	Ingest ingest.Config
	// Webhook is the webhook-receiver's configuration.
	Webhook webhookrx.Config
	// Matcher is the matcher's configuration. When score-sync runs without the matcher,
	// Matcher.GRPCAddr is the MappingService it calls.
	Matcher matcher.Config
	// ScoreSync is score-sync's configuration.
	ScoreSync scoresync.Config
	Logger    *slog.Logger
	Meter     metric.MeterProvider
	Tracer    trace.TracerProvider
	// Metrics serves /metrics on the services' admin listeners.
	Metrics http.Handler
}

// Stack is a running assembly.
type Stack struct {
	NATS     *embedded.Server
	NC       *nats.Conn
	JS       jetstream.JetStream
	Redis    *redis.Client
	RedisURL string
	Portals  *portal.Registry
	Ingest   *ingest.Service
	Webhook  *webhookrx.Service
	Matcher  *matcher.Service
	// ScoreSync is score-sync; its MappingService client dials the matcher.
	ScoreSync *scoresync.Service
	// Sandbox is the HubSpot stand-in, nil when a real HubSpot token is configured.
	Sandbox *hubspottest.Server
	// HubSpotURL is the HubSpot API base URL everything uses.
	HubSpotURL string

	miniRedis      *miniredis.Miniredis
	sandboxSecrets map[string]string
	demoCompany    demoCompany
	mappingConn    *grpc.ClientConn
	cfg            Config
}

// DefaultConfig is every service's configuration as its binary reads it from an empty
// environment (the defaults of the env tags), with every listener and the embedded NATS
// server on a random loopback port. Set DataDir, and change what you need.
func DefaultConfig() (Config, error) {
	cfg := Config{NATSHost: "127.0.0.1"}
	noEnv := func(string) string { return "" }
	for _, c := range []struct {
		prefix string
		dst    any
	}{
		{"SB_INGEST", &cfg.Ingest}, {"SB_WEBHOOK", &cfg.Webhook}, {"SB_MATCHER", &cfg.Matcher}, {"SB_SCORESYNC", &cfg.ScoreSync},
	} {
		if err := config.Load(c.prefix, noEnv, c.dst); err != nil {
			return Config{}, fmt.Errorf("devstack: default %s config: %w", c.prefix, err)
		}
	}
	const random = "127.0.0.1:0"
	cfg.Ingest.HTTPAddr, cfg.Ingest.GRPCAddr, cfg.Ingest.AdminAddr = random, random, random
	cfg.Webhook.HTTPAddr, cfg.Webhook.AdminAddr = random, random
	cfg.Matcher.GRPCAddr, cfg.Matcher.AdminAddr = random, random
	cfg.ScoreSync.GRPCAddr, cfg.ScoreSync.AdminAddr = random, random
	return cfg, nil
}

// Start brings everything up, in order: NATS, topology, portals, cache, services (bound, not
// yet serving). Call Run to serve, and Close when Run returns.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Services) == 0 {
		cfg.Services = Services
	}
	for _, s := range cfg.Services {
		if !slices.Contains(Services, s) {
			return nil, fmt.Errorf("devstack: unknown service %q (have: %s)", s, strings.Join(Services, ", "))
		}
	}
	st := &Stack{cfg: cfg}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	st.NATS, err = embedded.Start(embedded.Options{
		Host: cfg.NATSHost, Port: cfg.NATSPort, StoreDir: filepath.Join(cfg.DataDir, "nats"),
		LazyFsync: cfg.LazyFsync, ServerName: "devstack",
	})
	if err != nil {
		return nil, fmt.Errorf("devstack: nats: %w", err)
	}
	st.NC, err = natsx.Connect(ctx, natsx.Config{URL: st.NATS.ClientURL(), Name: "devstack"}, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("devstack: nats connect: %w", err)
	}
	if st.JS, err = jetstream.New(st.NC); err != nil {
		return nil, fmt.Errorf("devstack: jetstream: %w", err)
	}
	if err := natsx.Provision(ctx, st.JS, natsx.DefaultTopology(natsx.TopologyOptions{})); err != nil {
		return nil, fmt.Errorf("devstack: provision: %w", err)
	}
	kv, err := st.JS.KeyValue(ctx, natsx.BucketPortals)
	if err != nil {
		return nil, fmt.Errorf("devstack: portals bucket: %w", err)
	}
	store := portal.NewStore(kv)
	for i, doc := range append([][]byte{demoPortal}, cfg.PortalFiles...) {
		pc, err := portal.Parse(doc)
		if err != nil {
			return nil, fmt.Errorf("devstack: portal file %d: %w", i, err)
		}
		if err := store.Put(ctx, pc); err != nil {
			return nil, fmt.Errorf("devstack: store portal %s: %w", pc.PortalID, err)
		}
	}
	if st.Portals, err = portal.Watch(ctx, kv, cfg.Logger); err != nil {
		return nil, fmt.Errorf("devstack: watch portals: %w", err)
	}
	if err := st.startCache(ctx); err != nil {
		return nil, err
	}
	if err := st.startHubSpot(); err != nil {
		return nil, err
	}
	if slices.Contains(cfg.Services, "ingest") {
		st.Ingest, err = ingest.New(cfg.Ingest, ingest.Deps{
			NC: st.NC, JS: st.JS, Portals: st.Portals, Logger: cfg.Logger.With("component", "ingest"),
			Meter: cfg.Meter, Tracer: cfg.Tracer, Metrics: cfg.Metrics,
		})
		if err != nil {
			return nil, fmt.Errorf("devstack: ingest: %w", err)
		}
	}
	if slices.Contains(cfg.Services, "webhook-receiver") {
		st.Webhook, err = webhookrx.New(cfg.Webhook, webhookrx.Deps{
			NC: st.NC, JS: st.JS, Portals: st.Portals,
			Secrets: func(name string) (string, bool) { v := st.secret(name); return v, v != "" },
			Logger:  cfg.Logger.With("component", "webhook-receiver"),
			Meter:   cfg.Meter, Tracer: cfg.Tracer, Metrics: cfg.Metrics,
		})
		if err != nil {
			return nil, fmt.Errorf("devstack: webhook-receiver: %w", err)
		}
		if err := st.connectSandboxApp(ctx); err != nil {
			return nil, err
		}
	}
	if err := st.startHubSpotServices(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

// startHubSpotServices starts matcher and score-sync (those selected): one quota governor on
// the stack's cache and one client per portal, pointed at the sandbox or at real HubSpot.
func (st *Stack) startHubSpotServices(ctx context.Context) error {
	cfg := st.cfg
	runMatcher, runScoreSync := slices.Contains(cfg.Services, "matcher"), slices.Contains(cfg.Services, "score-sync")
	if !runMatcher && !runScoreSync {
		return nil
	}
	gov, err := quota.New(quota.Config{
		Redis: st.Redis, ExpectedReplicas: 1, Logger: cfg.Logger.With("component", "quota"), MeterProvider: cfg.Meter,
	})
	if err != nil {
		return fmt.Errorf("devstack: quota governor: %w", err)
	}
	clients, err := portalclients.New(portalclients.Config{
		BaseURL: st.HubSpotURL, Portals: st.Portals, Governor: gov,
		Secrets: func(name string) (string, bool) { v := st.secret(name); return v, v != "" },
		Logger:  cfg.Logger.With("component", "hubspot"), MeterProvider: cfg.Meter, TracerProvider: cfg.Tracer,
	})
	if err != nil {
		return fmt.Errorf("devstack: hubspot clients: %w", err)
	}
	if runMatcher {
		st.Matcher, err = matcher.New(cfg.Matcher, matcher.Deps{
			NC: st.NC, JS: st.JS, Portals: st.Portals, Redis: st.Redis, HubSpot: clients.Client,
			Logger: cfg.Logger.With("component", "matcher"), Meter: cfg.Meter, Tracer: cfg.Tracer, Metrics: cfg.Metrics,
		})
		if err != nil {
			return fmt.Errorf("devstack: matcher: %w", err)
		}
	}
	if runScoreSync {
		target := cfg.Matcher.GRPCAddr
		if st.Matcher != nil {
			target = st.Matcher.GRPCAddr()
		}
		if st.mappingConn, err = grpcx.Dial(ctx, target); err != nil {
			return fmt.Errorf("devstack: score-sync: matcher at %s: %w", target, err)
		}
		st.ScoreSync, err = scoresync.New(cfg.ScoreSync, scoresync.Deps{
			NC: st.NC, JS: st.JS, Portals: st.Portals, Redis: st.Redis, HubSpot: clients.Client,
			Mapping: mappingv1.NewMappingServiceClient(st.mappingConn),
			Logger:  cfg.Logger.With("component", "score-sync"), Meter: cfg.Meter, Tracer: cfg.Tracer, Metrics: cfg.Metrics,
		})
		if err != nil {
			return fmt.Errorf("devstack: score-sync: %w", err)
		}
	}
	return nil
}

// secret resolves a secret name: the sandbox's own secrets first, then Config.Secrets.
func (st *Stack) secret(name string) string {
	if st.Sandbox != nil {
		if v, ok := st.sandboxSecrets[name]; ok {
			return v
		}
	}
	if st.cfg.Secrets == nil || name == "" {
		return ""
	}
	return st.cfg.Secrets(name)
}

// connectSandboxApp registers the demo portal's app with the sandbox, pointing its webhooks at
// the webhook-receiver, and makes its subscriptions match the demo portal's mappings, so that a
// change in the sandbox's CRM shows up on the HUBSPOT stream.
func (st *Stack) connectSandboxApp(ctx context.Context) error {
	if st.Sandbox == nil {
		return nil
	}
	demo, _ := st.Portals.Get(strconv.Itoa(DemoPortalID))
	if demo.HubSpot.AppID == 0 {
		return nil
	}
	st.Sandbox.AddApp(hubspottest.App{
		ID: demo.HubSpot.AppID, ClientSecret: demoAppSecret, DeveloperAPIKey: demoDeveloperKey,
		TargetURL: "http://" + st.Webhook.HTTPAddr() + st.webhookPath(),
	})
	api, err := webhookrx.NewSubscriptionsClient(webhookrx.SubscriptionsConfig{BaseURL: st.Sandbox.URL, DeveloperAPIKey: demoDeveloperKey})
	if err != nil {
		return fmt.Errorf("devstack: sandbox subscriptions: %w", err)
	}
	if _, err := webhookrx.EnsureSubscriptions(ctx, api, demo.HubSpot.AppID, demo); err != nil {
		return fmt.Errorf("devstack: sandbox subscriptions: %w", err)
	}
	return nil
}

func (st *Stack) webhookPath() string {
	if st.cfg.Webhook.Path != "" {
		return st.cfg.Webhook.Path
	}
	return webhookrx.DefaultPath
}

// WebhookURL is where HubSpot (or the sandbox) posts webhooks ("" without webhook-receiver).
func (st *Stack) WebhookURL() string {
	if st.Webhook == nil {
		return ""
	}
	return "http://" + st.Webhook.HTTPAddr() + st.webhookPath()
}

func (st *Stack) startCache(ctx context.Context) error {
	url := st.cfg.RedisURL
	if url == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return fmt.Errorf("devstack: in-memory cache: %w", err)
		}
		st.miniRedis = mr
		url = "redis://" + mr.Addr()
	}
	client, err := redisx.New(ctx, redisx.Config{URL: url})
	if err != nil {
		return fmt.Errorf("devstack: cache: %w", err)
	}
	st.Redis, st.RedisURL = client, url
	return nil
}

// DemoPortalID is the demo portal's id (the HubSpot portal the sandbox serves).
const DemoPortalID = 12345678

// The sandbox's credentials for the demo portal and its app. They exist only in the sandbox.
const (
	demoSandboxToken = "pat-sandbox-demo"
	demoAppSecret    = "sandbox-demo-app-secret"
	demoDeveloperKey = "sandbox-demo-developer-key"
)

// startHubSpot points the stack at real HubSpot when the demo portal's token is configured, and
// otherwise starts the sandbox with demo data.
func (st *Stack) startHubSpot() error {
	demo, ok := st.Portals.Get(strconv.Itoa(DemoPortalID))
	if !ok {
		return fmt.Errorf("devstack: demo portal %d missing", DemoPortalID)
	}
	if st.secret(demo.HubSpot.Auth.Secret) != "" {
		st.HubSpotURL = "https://api.hubapi.com"
		st.cfg.Logger.Info("using real HubSpot for the demo portal", "secret", demo.HubSpot.Auth.Secret)
		return nil
	}
	st.Sandbox = hubspottest.New(hubspottest.Options{Logger: st.cfg.Logger.With("component", "hubspot-sandbox")})
	st.sandboxSecrets = map[string]string{demo.HubSpot.Auth.Secret: demoSandboxToken}
	if demo.HubSpot.WebhookSecret != "" {
		st.sandboxSecrets[demo.HubSpot.WebhookSecret] = demoAppSecret
	}
	p, err := st.Sandbox.CreatePortal(hubspottest.PortalOptions{ID: DemoPortalID, Token: demoSandboxToken,
		Tier: string(demo.HubSpot.Tier), PrivateAppID: demo.HubSpot.AppID})
	if err != nil {
		return fmt.Errorf("devstack: sandbox portal: %w", err)
	}
	n := st.cfg.SandboxCompanies
	if n <= 0 {
		n = 500
	}
	gen := p.Generate(hubspottest.GenerateOptions{Companies: n, ContactsPerCompany: 3, DealsPerCompany: 1,
		AliasRate: 0.2, DuplicateDomainRate: 0.05, WebsiteOnlyRate: 0.05, Seed: DemoPortalID})
	st.demoCompany = pickDemoCompany(p, gen.Companies)
	st.HubSpotURL = st.Sandbox.URL
	return nil
}

type demoCompany struct{ id, domain string }

// pickDemoCompany returns the first generated company whose domain no other company has, as
// domain or alias, so that a signal for it matches exactly that company.
func pickDemoCompany(p *hubspottest.Portal, ids []string) demoCompany {
	owners := map[string]int{}
	domains := make([]string, len(ids))
	for i, id := range ids {
		props, _ := p.Object("companies", id)
		domains[i] = props["domain"]
		seen := map[string]bool{}
		for _, d := range append([]string{props["domain"]}, strings.Split(props["hs_additional_domains"], ";")...) {
			if d = strings.TrimSpace(d); d != "" && !seen[d] {
				seen[d] = true
				owners[d]++
			}
		}
	}
	for i, id := range ids {
		if d := domains[i]; d != "" && owners[d] == 1 {
			return demoCompany{id: id, domain: d}
		}
	}
	return demoCompany{}
}

// DemoCompany is a company of the sandbox's demo data that a signal or score for domain
// matches unambiguously; empty with real HubSpot.
func (st *Stack) DemoCompany() (id, domain string) {
	return st.demoCompany.id, st.demoCompany.domain
}

// SandboxToken is the token of the demo portal in the sandbox ("" with real HubSpot).
func (st *Stack) SandboxToken() string {
	if st.Sandbox == nil {
		return ""
	}
	return demoSandboxToken
}

// InMemoryCache reports whether the cache is the in-memory stand-in.
func (st *Stack) InMemoryCache() bool { return st.miniRedis != nil }

// Run serves every started service until ctx is done, then stops them. A service that was
// still starting when ctx ended is not an error.
func (st *Stack) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	serve := func(run func(context.Context) error) {
		g.Go(func() error {
			err := run(gctx)
			if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		})
	}
	if st.Ingest != nil {
		serve(st.Ingest.Run)
	}
	if st.Webhook != nil {
		serve(st.Webhook.Run)
	}
	if st.Matcher != nil {
		serve(st.Matcher.Run)
	}
	if st.ScoreSync != nil {
		serve(st.ScoreSync.Run)
	}
	return g.Wait()
}

// Close releases everything Start acquired, in reverse order: the matcher connection,
// portals watch, sandbox, cache, NATS connection (drained), NATS server.
func (st *Stack) Close() {
	if st.mappingConn != nil {
		_ = st.mappingConn.Close()
	}
	if st.Portals != nil {
		st.Portals.Close()
	}
	if st.Sandbox != nil {
		st.Sandbox.Close()
	}
	if st.Redis != nil {
		_ = st.Redis.Close()
	}
	if st.miniRedis != nil {
		st.miniRedis.Close()
	}
	if st.NC != nil {
		if err := st.NC.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			st.cfg.Logger.Warn("nats drain", "err", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !st.NC.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if st.NATS != nil {
		st.NATS.Shutdown()
	}
}
