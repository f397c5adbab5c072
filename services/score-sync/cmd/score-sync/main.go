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

	"github.com/signalbridge/signalbridge/libs/config"
	mappingv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/mapping/v1"
	"github.com/signalbridge/signalbridge/libs/grpcx"
	"github.com/signalbridge/signalbridge/libs/hubspot/portalclients"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/redisx"
	"github.com/signalbridge/signalbridge/libs/service"
	scoresync "github.com/signalbridge/signalbridge/services/score-sync"
)

type settings struct {
	ScoreSync      scoresync.Config `env:"SCORESYNC"`
	Redis          redisx.Config    `env:"REDIS"`
	MatcherAddr    string           `env:"MATCHER_ADDR" default:"dns:///matcher:9000" desc:"gRPC target of the matcher's MappingService"`
	HubSpotBaseURL string           `env:"HUBSPOT_BASE_URL" default:"https://api.hubapi.com" desc:"HubSpot API root (a sandbox URL in development)"`
	Replicas       int              `env:"HUBSPOT_EXPECTED_REPLICAS" default:"4" desc:"replicas sharing a portal's quota (local share while Redis is down)"`
	service.Settings
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
	base, err := service.Start(ctx, "score-sync", scoresync.Version, cfg, os.Stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, base.Close()) }()
	tel, log := base.Telemetry, base.Logger

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

	gov, err := quota.New(quota.Config{
		Redis: rdb, ExpectedReplicas: cfg.Replicas, Logger: log, MeterProvider: tel.MeterProvider,
	})
	if err != nil {
		return fmt.Errorf("quota governor: %w", err)
	}
	clients, err := portalclients.New(portalclients.Config{
		BaseURL: cfg.HubSpotBaseURL, Portals: base.Portals, Governor: gov, DefaultClass: quota.Bulk,
		Secrets: service.NewSecrets(getenv, os.ReadFile, time.Now).Lookup, Logger: log,
		MeterProvider: tel.MeterProvider, TracerProvider: tel.TracerProvider,
	})
	if err != nil {
		return err
	}
	svc, err := scoresync.New(cfg.ScoreSync, scoresync.Deps{
		NC: base.NC, JS: base.JS, Portals: base.Portals, Redis: rdb, HubSpot: clients.Client,
		Mapping: mappingv1.NewMappingServiceClient(conn), Logger: log,
		Meter: tel.MeterProvider, Tracer: tel.TracerProvider, Metrics: tel.MetricsHandler(),
	})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
