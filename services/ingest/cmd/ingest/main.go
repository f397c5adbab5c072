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

	"github.com/signalbridge/signalbridge/libs/config"
	"github.com/signalbridge/signalbridge/libs/service"
	"github.com/signalbridge/signalbridge/services/ingest"
)

type settings struct {
	Ingest ingest.Config `env:"INGEST"`
	service.Settings
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
	base, err := service.Start(ctx, "ingest", ingest.Version, cfg, os.Stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, base.Close()) }()

	tel := base.Telemetry
	svc, err := ingest.New(cfg.Ingest, ingest.Deps{
		NC: base.NC, JS: base.JS, Portals: base.Portals, Logger: base.Logger,
		Meter: tel.MeterProvider, Tracer: tel.TracerProvider, Metrics: tel.MetricsHandler(),
	})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
