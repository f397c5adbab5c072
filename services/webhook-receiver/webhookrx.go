// Package webhookrx is the webhook-receiver service: the one HTTP endpoint
// (POST /webhooks/hubspot by default) where HubSpot delivers the webhook
// events of any number of apps and portals. Each request is verified with
// the signature scheme and client secret of the portal's app, and each of
// its events becomes one signalbridge.hubspot.v1.HubSpotEvent on
// hubspot.v1.<portal>.<object>.<event> with Nats-Msg-Id "hs:<portal>:<eventId>",
// all events of a request in one JetStream atomic batch. HubSpot gets its
// 200 only after the batch is stored; when JetStream is unavailable it gets a
// 503 and retries, and its retries are stored once.
//
// EnsureSubscriptions makes an app's webhook subscriptions match what the
// portals using it need (see subscriptions.go).
package webhookrx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/signalbridge/signalbridge/libs/config"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/service"
	"github.com/signalbridge/signalbridge/services/webhook-receiver/internal/receiver"
)

// Version is the service version written into every event's producer field.
const Version = "0.1.0"

// DefaultPath is where HubSpot posts webhooks unless SB_WEBHOOK_PATH says otherwise.
const DefaultPath = "/webhooks/hubspot"

// MaxEvents is the most events one webhook request may carry (HubSpot sends
// at most 100).
const MaxEvents = receiver.MaxEvents

// Config is the webhook-receiver's own configuration (environment prefix
// SB_WEBHOOK_).
type Config struct {
	HTTPAddr  string `env:"HTTP_ADDR" default:":8080" desc:"webhook listen address"`
	AdminAddr string `env:"ADMIN_ADDR" default:":9090" desc:"/metrics, /healthz and /readyz listen address"`
	Path      string `env:"PATH" default:"/webhooks/hubspot" desc:"path HubSpot posts webhooks to"`
	// PublicBaseURL is scheme://host[/prefix] as HubSpot calls us (the app's
	// target URL without the path); the signed URI is this plus the request's
	// path and query. If a proxy strips a path prefix, include it here.
	PublicBaseURL string `env:"PUBLIC_BASE_URL" desc:"scheme://host[/prefix] HubSpot calls; empty: from the request (see TRUST_FORWARDED)"`
	// TrustForwarded rebuilds the signed URI from X-Forwarded-Proto and
	// X-Forwarded-Host; only behind a proxy that sets them.
	TrustForwarded  bool          `env:"TRUST_FORWARDED" default:"false" desc:"take scheme and host from X-Forwarded-Proto/-Host (behind a trusted proxy)"`
	MaxBodyBytes    int64         `env:"MAX_BODY_BYTES" default:"1048576" desc:"largest webhook body"`
	MaxSignatureAge time.Duration `env:"MAX_SIGNATURE_AGE" default:"5m" desc:"oldest accepted X-HubSpot-Request-Timestamp"`
	PublishTimeout  time.Duration `env:"PUBLISH_TIMEOUT" default:"4s" desc:"wait for JetStream before answering 503 (HubSpot times out after 5s)"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"15s" desc:"budget for finishing requests on shutdown"`
	// HubSpotBaseURL and DeveloperAPIKey are used by EnsureSubscriptions.
	HubSpotBaseURL  string        `env:"HUBSPOT_BASE_URL" default:"https://api.hubapi.com" desc:"HubSpot API root, for managing webhook subscriptions"`
	DeveloperAPIKey config.Secret `env:"DEVELOPER_API_KEY" desc:"HubSpot developer API key for the webhooks management API (or SB_WEBHOOK_DEVELOPER_API_KEY_FILE)"`
}

// Validate checks the values Load cannot.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("SB_WEBHOOK_MAX_BODY_BYTES: %d is outside 1024..%d", c.MaxBodyBytes, 64<<20))
	}
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, " {}?#") {
		errs = append(errs, fmt.Errorf("SB_WEBHOOK_PATH: %q must start with / and hold no spaces, braces, ? or #", c.Path))
	}
	if c.PublicBaseURL != "" {
		if err := checkBaseURL(c.PublicBaseURL); err != nil {
			errs = append(errs, fmt.Errorf("SB_WEBHOOK_PUBLIC_BASE_URL: %w", err))
		}
	}
	if c.HubSpotBaseURL != "" {
		if err := checkBaseURL(c.HubSpotBaseURL); err != nil {
			errs = append(errs, fmt.Errorf("SB_WEBHOOK_HUBSPOT_BASE_URL: %w", err))
		}
	}
	if c.MaxSignatureAge <= 0 || c.MaxSignatureAge > time.Hour {
		errs = append(errs, fmt.Errorf("SB_WEBHOOK_MAX_SIGNATURE_AGE: %s is outside (0, 1h]", c.MaxSignatureAge))
	}
	if c.PublishTimeout <= 0 {
		errs = append(errs, fmt.Errorf("SB_WEBHOOK_PUBLISH_TIMEOUT: %s must be positive", c.PublishTimeout))
	}
	return errors.Join(errs...)
}

// applyDefaults fills zero values (a Config built in code, as devstack
// does) with the defaults of the env tags.
func (c *Config) applyDefaults() {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxSignatureAge == 0 {
		c.MaxSignatureAge = 5 * time.Minute
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 4 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q: %w", s, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: scheme must be http or https", s)
	case u.Host == "":
		return fmt.Errorf("%q: no host", s)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: no query or fragment allowed", s)
	}
	return nil
}

// Portals is the live portal configuration (a *portal.Registry).
type Portals interface {
	Get(portalID string) (*portal.Config, bool)
	Portals() []string
}

// Deps are what the webhook-receiver needs from its process.
type Deps struct {
	NC      *nats.Conn
	JS      jetstream.JetStream
	Portals Portals
	// Secrets resolves a secret NAME from a portal config (hubspot.webhook_secret)
	// to its value; false when it is not set.
	Secrets func(name string) (string, bool)
	Logger  *slog.Logger
	Meter   metric.MeterProvider
	// Tracer traces HTTP calls and publishes; the global provider when nil.
	Tracer trace.TracerProvider
	// Metrics serves /metrics on the admin listener; nil leaves it out.
	Metrics http.Handler
	// Now is the clock (signature timestamps); time.Now when nil.
	Now func() time.Time
}

// Service is a bound, not yet running webhook-receiver.
type Service struct {
	cfg   Config
	deps  Deps
	http  *http.Server
	admin *service.Admin

	httpLis net.Listener
}

// New builds the service and binds its listeners, so that their addresses
// are known before Run.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.NC == nil || deps.JS == nil || deps.Portals == nil || deps.Secrets == nil {
		return nil, errors.New("webhookrx: NC, JS, Portals and Secrets are required")
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webhookrx: config: %w", err)
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
	log := deps.Logger
	pub := natsx.NewPublisher(deps.NC, deps.JS, deps.Tracer)
	h, err := receiver.New(deps.Portals, deps.Secrets, pub, receiver.Options{
		MaxBodyBytes:    cfg.MaxBodyBytes,
		PublicBaseURL:   cfg.PublicBaseURL,
		TrustForwarded:  cfg.TrustForwarded,
		MaxSignatureAge: cfg.MaxSignatureAge,
		PublishTimeout:  cfg.PublishTimeout,
		Producer:        "webhook-receiver/" + Version,
		Now:             deps.Now,
	}, deps.Meter.Meter("signalbridge/webhook-receiver"), log)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, deps: deps}

	mux := http.NewServeMux()
	mux.Handle(cfg.Path, h) // every method: the handler answers 405 itself
	s.http = &http.Server{
		Handler: otelhttp.NewHandler(mux, "webhook-receiver",
			otelhttp.WithMeterProvider(deps.Meter), otelhttp.WithTracerProvider(deps.Tracer),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + cfg.Path })),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}

	if s.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("webhookrx: http listen %s: %w", cfg.HTTPAddr, err)
	}
	if s.admin, err = service.ListenAdmin(cfg.AdminAddr, s.ready, deps.Metrics); err != nil {
		s.httpLis.Close()
		return nil, fmt.Errorf("webhookrx: %w", err)
	}
	return s, nil
}

// HTTPAddr is the bound webhook address.
func (s *Service) HTTPAddr() string { return s.httpLis.Addr().String() }

// AdminAddr is the bound admin address.
func (s *Service) AdminAddr() string { return s.admin.Addr() }

func (s *Service) ready(w http.ResponseWriter, _ *http.Request) {
	if !service.NATSReady(w, s.deps.NC) {
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// Run serves until ctx is done, then shuts down in order: finish the
// webhook requests in flight (each waits for its JetStream ack), then close
// the admin listener, last so probes see the drain.
func (s *Service) Run(ctx context.Context) error {
	log := s.deps.Logger
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(s.http, s.httpLis) })
	g.Go(s.admin.Serve)
	log.Info("webhook-receiver serving", "http", s.HTTPAddr(), "path", s.cfg.Path, "admin", s.AdminAddr(),
		"public_base_url", s.cfg.PublicBaseURL, "trust_forwarded", s.cfg.TrustForwarded)

	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		errs := []error{s.http.Shutdown(shutdownCtx), s.admin.Shutdown(shutdownCtx)}
		log.Info("webhook-receiver stopped")
		return errors.Join(errs...)
	})
	return g.Wait()
}

func serveHTTP(srv *http.Server, lis net.Listener) error {
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
