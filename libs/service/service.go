// Package service is what every signalbridge service process starts with: the common
// environment settings (NATS, telemetry, logging), one Start that brings up telemetry, the
// NATS connection, JetStream, the topology and the live portal registry, and one Close that
// releases them in order. It also holds the pieces every service repeats around that: the
// admin HTTP listener (/healthz, /readyz, /metrics) and the resolver of the secrets portal
// configs name.
//
// A main stays main → run(ctx) error:
//
//	type settings struct {
//		Ingest ingest.Config `env:"INGEST"`
//		service.Settings     // SB_NATS_URL, SB_NATS_TOKEN, ..., SB_LOG_FORMAT
//	}
//
//	func run(ctx context.Context, getenv func(string) string) (err error) {
//		var cfg settings
//		if err := config.Load("SB", getenv, &cfg); err != nil {
//			return fmt.Errorf("config: %w", err)
//		}
//		base, err := service.Start(ctx, "ingest", ingest.Version, cfg, os.Stderr)
//		if err != nil {
//			return err
//		}
//		defer func() { err = errors.Join(err, base.Close()) }()
//		...
//	}
//
// Libraries never read the environment: the environment comes in as getenv.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/signalbridge/signalbridge/libs/config"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/telemetry"
)

// Settings are the environment settings every service reads. Embed it, untagged, in a
// service's settings struct loaded with config.Load("SB", ...): the names stay SB_NATS_URL,
// SB_NATS_TOKEN (or SB_NATS_TOKEN_FILE), SB_NATS_PROVISION, SB_NATS_REPLICAS, SB_OTEL_ENDPOINT, SB_LOG_LEVEL and
// SB_LOG_FORMAT.
type Settings struct {
	NATSURL   string        `env:"NATS_URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL(s), comma separated"`
	NATSToken config.Secret `env:"NATS_TOKEN" desc:"NATS token (or SB_NATS_TOKEN_FILE)"`
	Provision bool          `env:"NATS_PROVISION" default:"true" desc:"create or update streams and KV buckets at start"`
	Replicas  int           `env:"NATS_REPLICAS" default:"1" desc:"replicas of the streams and buckets it provisions: 1 for one server, 3 on a cluster"`
	OTLP      string        `env:"OTEL_ENDPOINT" desc:"OTLP/gRPC endpoint for traces; empty: no export"`
	LogLevel  string        `env:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat string        `env:"LOG_FORMAT" default:"json" desc:"json or text"`
}

// Common returns s. A struct that embeds Settings has it too, which is how Start finds the
// common settings inside a service's whole settings struct (see Config).
func (s Settings) Common() Settings { return s }

// Config is a service's whole settings struct: anything that embeds Settings. Start logs it
// with config.String, so Secret fields print as ***.
type Config interface {
	Common() Settings
}

// CloseTimeout bounds Close: the NATS drain and the telemetry flush together.
const CloseTimeout = 5 * time.Second

// Base is what Start brought up. Close releases it.
type Base struct {
	// Telemetry holds the tracer and meter providers and the Prometheus registry.
	Telemetry *telemetry.Telemetry
	// Logger is Telemetry.Logger: JSON or text, with trace ids and the service name.
	Logger *slog.Logger
	// NC is the process's NATS connection, named after the service.
	NC *nats.Conn
	// JS is JetStream on NC.
	JS jetstream.JetStream
	// Portals is the live portal registry, watched from the portals KV bucket.
	Portals *portal.Registry
}

// Start sets up telemetry (logs to logOut, os.Stderr when nil), logs "<name> starting" with
// cfg printed by config.String (secrets masked), connects to NATS, provisions the default
// topology when Settings.Provision is set, and loads the portal registry. On error it
// releases what it had already brought up.
func Start(ctx context.Context, name, version string, cfg Config, logOut io.Writer) (_ *Base, err error) {
	s := cfg.Common()
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName: name, ServiceVersion: version,
		OTLPEndpoint: s.OTLP, LogLevel: s.LogLevel, LogFormat: s.LogFormat,
	}, logOut)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	b := &Base{Telemetry: tel, Logger: tel.Logger}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Close())
		}
	}()
	b.Logger.Info(name+" starting", "config", config.String(cfg))

	b.NC, err = natsx.Connect(ctx, natsx.Config{URL: s.NATSURL, Name: name, Token: s.NATSToken.Reveal()}, b.Logger)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if b.JS, err = jetstream.New(b.NC); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if s.Provision {
		if err := natsx.Provision(ctx, b.JS, natsx.DefaultTopology(natsx.TopologyOptions{Replicas: s.Replicas})); err != nil {
			return nil, fmt.Errorf("provision: %w", err)
		}
	}
	kv, err := b.JS.KeyValue(ctx, natsx.BucketPortals)
	if err != nil {
		return nil, fmt.Errorf("portals bucket: %w", err)
	}
	if b.Portals, err = portal.Watch(ctx, kv, b.Logger); err != nil {
		return nil, fmt.Errorf("portals: %w", err)
	}
	return b, nil
}

// Close releases everything in order: stop watching portals, drain the NATS connection
// (everything acknowledged is already stored, so a drain that does not finish is only
// logged), flush and stop telemetry. It waits at most CloseTimeout and returns the
// telemetry flush's error. Call it once, after the service's Run has returned.
func (b *Base) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), CloseTimeout)
	defer cancel()
	if b.Portals != nil {
		b.Portals.Close()
	}
	if b.NC != nil {
		if err := drain(ctx, b.NC); err != nil {
			b.Logger.Warn("nats drain", "err", err)
		}
	}
	return b.Telemetry.Shutdown(ctx)
}

// drain drains nc and waits until it is closed or ctx ends.
func drain(ctx context.Context, nc *nats.Conn) error {
	if err := nc.Drain(); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return nil
		}
		nc.Close()
		return err
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !nc.IsClosed() {
		select {
		case <-ctx.Done():
			nc.Close()
			return fmt.Errorf("drain not finished: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
