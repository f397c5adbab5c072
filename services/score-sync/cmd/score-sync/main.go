// Command score-sync runs the signalbridge score-sync service. Configuration is read from the
// environment (SB_SCORESYNC_*, SB_NATS_*, SB_REDIS_*, SB_MATCHER_ADDR, SB_HUBSPOT_*, SB_OTEL_*,
// SB_LOG_*); HubSpot credentials come from the variables (or <NAME>_FILE files) that each
// portal's config names.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/signalbridge/signalbridge/libs/config"
	mappingv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/mapping/v1"
	"github.com/signalbridge/signalbridge/libs/grpcx"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/redisx"
	"github.com/signalbridge/signalbridge/libs/telemetry"
	scoresync "github.com/signalbridge/signalbridge/services/score-sync"
)

type settings struct {
	ScoreSync      scoresync.Config `env:"SCORESYNC"`
	NATSURL        string           `env:"NATS_URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL(s), comma separated"`
	NATSToken      config.Secret    `env:"NATS_TOKEN" desc:"NATS token (or SB_NATS_TOKEN_FILE)"`
	Provision      bool             `env:"NATS_PROVISION" default:"true" desc:"create or update streams and KV buckets at start"`
	Redis          redisx.Config    `env:"REDIS"`
	MatcherAddr    string           `env:"MATCHER_ADDR" default:"dns:///matcher:9000" desc:"gRPC target of the matcher's MappingService"`
	HubSpotBaseURL string           `env:"HUBSPOT_BASE_URL" default:"https://api.hubapi.com" desc:"HubSpot API root (a sandbox URL in development)"`
	OTLP           string           `env:"OTEL_ENDPOINT" desc:"OTLP/gRPC endpoint for traces; empty: no export"`
	LogLevel       string           `env:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat      string           `env:"LOG_FORMAT" default:"json" desc:"json or text"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		slog.Error("score-sync stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) (err error) {
	var cfg settings
	if err := config.Load("SB", getenv, &cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName: "score-sync", ServiceVersion: scoresync.Version,
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
	log.Info("score-sync starting", "config", config.String(cfg))

	nc, err := natsx.Connect(ctx, natsx.Config{URL: cfg.NATSURL, Name: "score-sync", Token: cfg.NATSToken.Reveal()}, log)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Drain() //nolint:errcheck // best effort at exit; state is written before acknowledgements
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
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	defer rdb.Close()

	conn, err := grpcx.Dial(ctx, cfg.MatcherAddr)
	if err != nil {
		return fmt.Errorf("matcher: %w", err)
	}
	defer conn.Close()

	clients, err := newClients(portals, rdb, cfg.HubSpotBaseURL, getenv, log)
	if err != nil {
		return err
	}
	svc, err := scoresync.New(cfg.ScoreSync, scoresync.Deps{
		NC: nc, JS: js, Portals: portals, Redis: rdb, HubSpot: clients.Client,
		Mapping: mappingv1.NewMappingServiceClient(conn), Logger: log,
		Meter: tel.MeterProvider, Tracer: tel.TracerProvider, Metrics: tel.MetricsHandler(),
	})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
