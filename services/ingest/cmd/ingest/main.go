// Command ingest runs the signalbridge ingest service. Configuration is read from the
// environment (SB_INGEST_*, SB_NATS_*, SB_OTEL_*, SB_LOG_*); see the README.
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
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/telemetry"
	"github.com/signalbridge/signalbridge/services/ingest"
)

type settings struct {
	Ingest    ingest.Config `env:"INGEST"`
	NATSURL   string        `env:"NATS_URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL(s), comma separated"`
	NATSToken config.Secret `env:"NATS_TOKEN" desc:"NATS token (or SB_NATS_TOKEN_FILE)"`
	Provision bool          `env:"NATS_PROVISION" default:"true" desc:"create or update streams and KV buckets at start"`
	OTLP      string        `env:"OTEL_ENDPOINT" desc:"OTLP/gRPC endpoint for traces; empty: no export"`
	LogLevel  string        `env:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat string        `env:"LOG_FORMAT" default:"json" desc:"json or text"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		slog.Error("ingest stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) (err error) {
	var cfg settings
	if err := config.Load("SB", getenv, &cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName: "ingest", ServiceVersion: ingest.Version,
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
	log.Info("ingest starting", "config", config.String(cfg))

	nc, err := natsx.Connect(ctx, natsx.Config{URL: cfg.NATSURL, Name: "ingest", Token: cfg.NATSToken.Reveal()}, log)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Drain() //nolint:errcheck // best effort at exit; everything acknowledged is already stored
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

	svc, err := ingest.New(cfg.Ingest, ingest.Deps{
		NC: nc, JS: js, Portals: portals, Logger: log,
		Meter: tel.MeterProvider, Tracer: tel.TracerProvider, Metrics: tel.MetricsHandler(),
	})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
