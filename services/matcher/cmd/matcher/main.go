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
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/signalbridge/signalbridge/libs/config"
	"github.com/signalbridge/signalbridge/libs/hubspot/portalclients"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/redisx"
	"github.com/signalbridge/signalbridge/libs/service"
	"github.com/signalbridge/signalbridge/services/matcher"
)

type settings struct {
	Matcher        matcher.Config `env:"MATCHER"`
	Redis          redisx.Config  `env:"REDIS"`
	RedisOptional  bool           `env:"REDIS_OPTIONAL" default:"true" desc:"start without Redis when it does not answer (degraded: straight from HubSpot)"`
	HubSpotBaseURL string         `env:"HUBSPOT_BASE_URL" default:"https://api.hubapi.com" desc:"HubSpot API root (the sandbox's URL in development)"`
	Replicas       int            `env:"HUBSPOT_EXPECTED_REPLICAS" default:"4" desc:"replicas sharing a portal's quota (local share while Redis is down)"`
	service.Settings
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
	base, err := service.Start(ctx, "matcher", matcher.Version, cfg, os.Stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, base.Close()) }()
	tel, log := base.Telemetry, base.Logger

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

	gov, err := quota.New(quota.Config{
		Redis: rdb, ExpectedReplicas: cfg.Replicas, Logger: log, MeterProvider: tel.MeterProvider,
	})
	if err != nil {
		return fmt.Errorf("quota governor: %w", err)
	}
	clients, err := portalclients.New(portalclients.Config{
		BaseURL: cfg.HubSpotBaseURL, Portals: base.Portals, Governor: gov,
		Secrets: service.NewSecrets(getenv, os.ReadFile, time.Now).Lookup, Logger: log,
		MeterProvider: tel.MeterProvider, TracerProvider: tel.TracerProvider,
	})
	if err != nil {
		return err
	}

	svc, err := matcher.New(cfg.Matcher, matcher.Deps{
		NC: base.NC, JS: base.JS, Portals: base.Portals, Redis: rdb, HubSpot: clients.Client, Logger: log,
		Meter: tel.MeterProvider, Tracer: tel.TracerProvider, Metrics: tel.MetricsHandler(),
	})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
