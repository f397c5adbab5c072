// Command matcher runs the signalbridge matcher service. Configuration is read from the
// environment (SB_MATCHER_*, SB_NATS_*, SB_REDIS_*, SB_HUBSPOT_*, SB_OTEL_*, SB_LOG_*).
// HubSpot secrets named in portal configs (hubspot.auth.secret, and the OAuth secrets)
// are read from the environment variable of that name, or from the file named by
// <NAME>_FILE.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/signalbridge/signalbridge/libs/config"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/redisx"
	"github.com/signalbridge/signalbridge/libs/telemetry"
	"github.com/signalbridge/signalbridge/services/matcher"
)

type settings struct {
	Matcher        matcher.Config `env:"MATCHER"`
	Redis          redisx.Config  `env:"REDIS"`
	RedisOptional  bool           `env:"REDIS_OPTIONAL" default:"true" desc:"start without Redis when it does not answer (degraded: straight from HubSpot)"`
	HubSpotBaseURL string         `env:"HUBSPOT_BASE_URL" default:"https://api.hubapi.com" desc:"HubSpot API root (the sandbox's URL in development)"`
	Replicas       int            `env:"HUBSPOT_EXPECTED_REPLICAS" default:"4" desc:"replicas sharing a portal's quota (local share while Redis is down)"`
	NATSURL        string         `env:"NATS_URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL(s), comma separated"`
	NATSToken      config.Secret  `env:"NATS_TOKEN" desc:"NATS token (or SB_NATS_TOKEN_FILE)"`
	Provision      bool           `env:"NATS_PROVISION" default:"true" desc:"create or update streams and KV buckets at start"`
	OTLP           string         `env:"OTEL_ENDPOINT" desc:"OTLP/gRPC endpoint for traces; empty: no export"`
	LogLevel       string         `env:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat      string         `env:"LOG_FORMAT" default:"json" desc:"json or text"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		slog.Error("matcher stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) (err error) {
	var cfg settings
	if err := config.Load("SB", getenv, &cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName: "matcher", ServiceVersion: matcher.Version,
		OTLPEndpoint: cfg.OTLP, LogLevel: cfg.LogLevel, LogFormat: cfg.LogFormat,
	}, os.Stderr)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = errors.Join(err, tel.Shutdown(shutdownCtx))
	}()
	log := tel.Logger
	log.Info("matcher starting", "config", config.String(cfg))

	nc, err := natsx.Connect(ctx, natsx.Config{URL: cfg.NATSURL, Name: "matcher", Token: cfg.NATSToken.Reveal()}, log)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Drain() //nolint:errcheck // best effort at exit; acknowledged work is done
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if cfg.Provision {
		if err := natsx.Provision(ctx, js, natsx.DefaultTopology(natsx.TopologyOptions{})); err != nil {
			return fmt.Errorf("provision: %w", err)
		}
	}
	kv, err := js.KeyValue(ctx, natsx.BucketPortals)
	if err != nil {
		return fmt.Errorf("portals bucket: %w", err)
	}
	portals, err := portal.Watch(ctx, kv, log)
	if err != nil {
		return fmt.Errorf("portals: %w", err)
	}
	defer portals.Close()

	cfg.Redis.TracerProvider, cfg.Redis.MeterProvider = tel.TracerProvider, tel.MeterProvider
	rdb, err := redisx.New(ctx, cfg.Redis)
	switch {
	case err == nil:
		defer rdb.Close()
	case cfg.RedisOptional:
		// Keep a client anyway: the matcher probes it and uses it once Redis answers.
		log.Warn("redis unavailable at start: matching straight from HubSpot until it answers", "err", err)
		opts, perr := redis.ParseURL(cfg.Redis.URL)
		if perr != nil {
			return fmt.Errorf("redis: %w", perr)
		}
		if cfg.Redis.Password != "" {
			opts.Password = cfg.Redis.Password.Reveal()
		}
		rdb = redis.NewClient(opts)
		defer rdb.Close()
	default:
		return fmt.Errorf("redis: %w", err)
	}

	gov, err := quota.New(quota.Config{Redis: rdb, ExpectedReplicas: cfg.Replicas, Logger: log})
	if err != nil {
		return fmt.Errorf("quota governor: %w", err)
	}
	clients := &hubspotClients{
		baseURL: cfg.HubSpotBaseURL, portals: portals, gov: gov, log: log,
		secrets: newSecrets(getenv, os.ReadFile, time.Now), cache: map[string]cachedClient{},
	}

	svc, err := matcher.New(cfg.Matcher, matcher.Deps{
		NC: nc, JS: js, Portals: portals, Redis: rdb, HubSpot: clients.get, Logger: log,
		Meter: tel.MeterProvider, Tracer: tel.TracerProvider, Metrics: tel.MetricsHandler(),
	})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

// hubspotClients builds one client per portal from its config and secrets, all sharing
// the process's quota governor; a client is rebuilt when the portal's config changes.
type hubspotClients struct {
	baseURL string
	portals *portal.Registry
	gov     *quota.Governor
	secrets *secrets
	log     *slog.Logger

	mu    sync.Mutex
	cache map[string]cachedClient
}

type cachedClient struct {
	cfg    *portal.Config // the config it was built from (the registry swaps pointers on change)
	client *hubspot.Client
}

func (h *hubspotClients) get(portalID string) (*hubspot.Client, error) {
	cfg, ok := h.portals.Get(portalID)
	if !ok {
		return nil, fmt.Errorf("portal %s is not configured", portalID)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.cache[portalID]; ok && c.cfg == cfg {
		return c.client, nil
	}
	id, err := strconv.ParseInt(portalID, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("portal id %q is not numeric", portalID)
	}
	l := cfg.Limits()
	if err := h.gov.SetLimits(id, quota.Limits{
		Burst: l.Burst, Interval: l.Interval, SearchPerSecond: l.SearchPerSecond, Daily: l.Daily, DailyReserve: l.Daily / 20,
	}); err != nil {
		return nil, err
	}
	auth, err := h.auth(cfg)
	if err != nil {
		return nil, fmt.Errorf("portal %s: %w", portalID, err)
	}
	c, err := hubspot.New(hubspot.Config{
		BaseURL: h.baseURL, APIVersion: string(cfg.HubSpot.APIVersion), PortalID: id, Auth: auth,
		Governor: h.gov, Logger: h.log,
	})
	if err != nil {
		return nil, fmt.Errorf("portal %s: %w", portalID, err)
	}
	h.cache[portalID] = cachedClient{cfg: cfg, client: c}
	return c, nil
}

func (h *hubspotClients) auth(cfg *portal.Config) (hubspot.Auth, error) {
	a := cfg.HubSpot.Auth
	need := func(name string) (string, error) {
		v, ok := h.secrets.lookup(name)
		if !ok {
			return "", fmt.Errorf("secret %s is not set (environment variable %s or file %s_FILE)", name, name, name)
		}
		return v, nil
	}
	switch a.Type {
	case portal.AuthOAuth:
		id, err := need(a.ClientIDSecret)
		if err != nil {
			return nil, err
		}
		secret, err := need(a.ClientSecretSecret)
		if err != nil {
			return nil, err
		}
		refresh, err := need(a.RefreshTokenSecret)
		if err != nil {
			return nil, err
		}
		return hubspot.OAuth(&oauth2.Config{
			ClientID: id, ClientSecret: secret,
			Endpoint: oauth2.Endpoint{TokenURL: strings.TrimRight(h.baseURL, "/") + "/oauth/v1/token", AuthStyle: oauth2.AuthStyleInParams},
		}, &oauth2.Token{RefreshToken: refresh}, hubspot.OAuthOptions{})
	default:
		token, err := need(a.Secret)
		if err != nil {
			return nil, err
		}
		return hubspot.BearerToken(token), nil
	}
}

// secrets resolves secret names from portal configs: the environment variable NAME, else
// the file named by NAME_FILE (re-read at most once a minute, so a rotated mounted secret
// is picked up).
type secrets struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	now      func() time.Time

	mu    sync.Mutex
	files map[string]cachedSecret
}

type cachedSecret struct {
	value string
	ok    bool
	read  time.Time
}

const secretFileTTL = time.Minute

func newSecrets(getenv func(string) string, readFile func(string) ([]byte, error), now func() time.Time) *secrets {
	return &secrets{getenv: getenv, readFile: readFile, now: now, files: map[string]cachedSecret{}}
}

func (s *secrets) lookup(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	if v := s.getenv(name); v != "" {
		return v, true
	}
	path := s.getenv(name + "_FILE")
	if path == "" {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.files[path]; ok && s.now().Sub(c.read) < secretFileTTL {
		return c.value, c.ok
	}
	data, err := s.readFile(path)
	c := cachedSecret{read: s.now()}
	if err == nil {
		c.value = strings.TrimSpace(string(data))
		c.ok = c.value != ""
	}
	s.files[path] = c
	return c.value, c.ok
}
