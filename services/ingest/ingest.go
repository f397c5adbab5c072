// Package ingest is the front door of signalbridge: it accepts intent signals and account
// scores over HTTP, gRPC and NATS request/reply, validates and normalises them, and publishes
// them to JetStream as SignalReceived and ScoreUpdated events. A caller gets a success answer
// only once JetStream has stored the batch.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/signalbridge/signalbridge/libs/grpcx"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/service"
	"github.com/signalbridge/signalbridge/services/ingest/internal/grpcapi"
	"github.com/signalbridge/signalbridge/services/ingest/internal/httpapi"
	"github.com/signalbridge/signalbridge/services/ingest/internal/intake"
	"github.com/signalbridge/signalbridge/services/ingest/internal/natsapi"
)

// Version is the service version written into every event's producer field.
const Version = "0.1.0"

// Config is the ingest service's own configuration (environment prefix SB_INGEST_).
type Config struct {
	HTTPAddr        string        `env:"HTTP_ADDR" default:":8080" desc:"HTTP API listen address"`
	GRPCAddr        string        `env:"GRPC_ADDR" default:":9000" desc:"gRPC IngestService listen address"`
	AdminAddr       string        `env:"ADMIN_ADDR" default:":9090" desc:"/metrics, /healthz and /readyz listen address"`
	NATSEndpoint    bool          `env:"NATS_ENDPOINT" default:"true" desc:"serve the NATS request endpoint ingest.v1.<portal>.signals|scores"`
	MaxBodyBytes    int64         `env:"MAX_BODY_BYTES" default:"8388608" desc:"largest HTTP request body"`
	MaxFutureSkew   time.Duration `env:"MAX_FUTURE_SKEW" default:"5m" desc:"how far in the future a timestamp may be"`
	MaxAge          time.Duration `env:"MAX_AGE" default:"8760h" desc:"how old a timestamp may be"`
	StreamWindow    int           `env:"STREAM_WINDOW" default:"4" desc:"chunks of one gRPC stream in flight to JetStream at once"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"15s" desc:"budget for draining requests on shutdown"`
}

// Validate checks the values Load cannot.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("SB_INGEST_MAX_BODY_BYTES: %d is below the minimum of 1024", c.MaxBodyBytes))
	}
	if c.StreamWindow < 1 || c.StreamWindow > 64 {
		errs = append(errs, fmt.Errorf("SB_INGEST_STREAM_WINDOW: %d is outside 1..64", c.StreamWindow))
	}
	if c.MaxFutureSkew < 0 || c.MaxAge <= 0 {
		errs = append(errs, errors.New("SB_INGEST_MAX_FUTURE_SKEW must be ≥ 0 and SB_INGEST_MAX_AGE > 0"))
	}
	return errors.Join(errs...)
}

// Deps are what ingest needs from its process.
type Deps struct {
	NC      *nats.Conn
	JS      jetstream.JetStream
	Portals intake.Portals
	Logger  *slog.Logger
	Meter   metric.MeterProvider
	// Tracer traces HTTP calls and publishes; the global provider when nil.
	Tracer trace.TracerProvider
	// Metrics serves /metrics on the admin listener; nil leaves it out.
	Metrics http.Handler
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Service is a bound, not yet running ingest service.
type Service struct {
	cfg   Config
	deps  Deps
	in    *intake.Intake
	http  *http.Server
	grpc  *grpcx.Server
	admin *service.Admin

	httpLis, grpcLis net.Listener
}

// New builds the service and binds its listeners, so that their addresses are known before Run.
func New(cfg Config, deps Deps) (*Service, error) {
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	deps.Logger = log
	if deps.Tracer == nil {
		deps.Tracer = otel.GetTracerProvider()
	}
	if deps.Meter == nil {
		deps.Meter = otel.GetMeterProvider()
	}
	pub := natsx.NewPublisher(deps.NC, deps.JS, deps.Tracer)
	in, err := intake.New(deps.Portals, pub, intake.Options{
		Producer:      "ingest/" + Version,
		MaxFutureSkew: cfg.MaxFutureSkew,
		MaxAge:        cfg.MaxAge,
		Now:           deps.Now,
	}, deps.Meter.Meter("signalbridge/ingest"), log)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, deps: deps, in: in}

	mux := http.NewServeMux()
	httpapi.New(in, cfg.MaxBodyBytes, log).Register(mux)
	s.http = &http.Server{
		Handler: otelhttp.NewHandler(mux, "ingest",
			otelhttp.WithMeterProvider(deps.Meter), otelhttp.WithTracerProvider(deps.Tracer)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	s.grpc = grpcx.NewServer(grpcx.ServerConfig{Reflection: true, GracefulTimeout: cfg.ShutdownTimeout, Logger: log})
	grpcapi.New(in, cfg.StreamWindow, log).Register(s.grpc.Server)

	if s.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("ingest: http listen %s: %w", cfg.HTTPAddr, err)
	}
	if s.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		s.httpLis.Close()
		return nil, fmt.Errorf("ingest: grpc listen %s: %w", cfg.GRPCAddr, err)
	}
	if s.admin, err = service.ListenAdmin(cfg.AdminAddr, s.ready, deps.Metrics); err != nil {
		s.httpLis.Close()
		s.grpcLis.Close()
		return nil, fmt.Errorf("ingest: %w", err)
	}
	return s, nil
}

// HTTPAddr is the bound HTTP API address.
func (s *Service) HTTPAddr() string { return s.httpLis.Addr().String() }

// GRPCAddr is the bound gRPC address.
func (s *Service) GRPCAddr() string { return s.grpcLis.Addr().String() }

// AdminAddr is the bound admin address.
func (s *Service) AdminAddr() string { return s.admin.Addr() }

func (s *Service) ready(w http.ResponseWriter, _ *http.Request) {
	if !service.NATSReady(w, s.deps.NC) {
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// Run serves until ctx is done, then shuts down in order: stop taking NATS requests, finish
// HTTP requests in flight, stop gRPC gracefully (health NOT_SERVING first), close the admin
// listener last so probes see the drain.
func (s *Service) Run(ctx context.Context) error {
	log := s.deps.Logger
	var micro *natsapi.Service
	if s.cfg.NATSEndpoint {
		var err error
		if micro, err = natsapi.Start(ctx, s.deps.NC, s.in, natsapi.Options{Version: Version}, log); err != nil {
			return fmt.Errorf("ingest: nats endpoint: %w", err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(s.http, s.httpLis) })
	g.Go(s.admin.Serve)
	g.Go(func() error { return s.grpc.Serve(gctx, s.grpcLis) })
	log.Info("ingest serving", "http", s.HTTPAddr(), "grpc", s.GRPCAddr(), "admin", s.AdminAddr(), "nats_endpoint", s.cfg.NATSEndpoint)

	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		var errs []error
		if micro != nil {
			errs = append(errs, micro.Stop())
		}
		errs = append(errs, s.http.Shutdown(shutdownCtx))
		// grpc stops itself on gctx; the admin server goes last.
		errs = append(errs, s.admin.Shutdown(shutdownCtx))
		log.Info("ingest stopped")
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
