// Command webhook-receiver runs the signalbridge webhook-receiver: HubSpot
// posts its webhooks here, and every verified event lands on the HUBSPOT
// stream. Configuration is read from the environment (SB_WEBHOOK_*,
// SB_NATS_*, SB_OTEL_*, SB_LOG_*). Webhook secrets named in portal configs
// (hubspot.webhook_secret) are read from the environment variable of that
// name, or from the file named by <NAME>_FILE.
//
//	webhook-receiver                         serve
//	webhook-receiver -ensure-subscriptions   make every app's webhook subscriptions match its portals, then exit
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/signalbridge/signalbridge/libs/config"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/telemetry"
	webhookrx "github.com/signalbridge/signalbridge/services/webhook-receiver"
)

type settings struct {
	Webhook   webhookrx.Config `env:"WEBHOOK"`
	NATSURL   string           `env:"NATS_URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL(s), comma separated"`
	NATSToken config.Secret    `env:"NATS_TOKEN" desc:"NATS token (or SB_NATS_TOKEN_FILE)"`
	Provision bool             `env:"NATS_PROVISION" default:"true" desc:"create or update streams and KV buckets at start"`
	OTLP      string           `env:"OTEL_ENDPOINT" desc:"OTLP/gRPC endpoint for traces; empty: no export"`
	LogLevel  string           `env:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat string           `env:"LOG_FORMAT" default:"json" desc:"json or text"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		slog.Error("webhook-receiver stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("webhook-receiver", flag.ContinueOnError)
	ensure := fs.Bool("ensure-subscriptions", false, "make every app's webhook subscriptions match what its portals need, print what changed, and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg settings
	if err := config.Load("SB", getenv, &cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName: "webhook-receiver", ServiceVersion: webhookrx.Version,
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
	log.Info("webhook-receiver starting", "config", config.String(cfg))

	nc, err := natsx.Connect(ctx, natsx.Config{URL: cfg.NATSURL, Name: "webhook-receiver", Token: cfg.NATSToken.Reveal()}, log)
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

	if *ensure {
		return ensureSubscriptions(ctx, cfg.Webhook, portals, stdout)
	}
	svc, err := webhookrx.New(cfg.Webhook, webhookrx.Deps{
		NC: nc, JS: js, Portals: portals, Secrets: newSecrets(getenv, os.ReadFile, time.Now).lookup, Logger: log,
		Meter: tel.MeterProvider, Tracer: tel.TracerProvider, Metrics: tel.MetricsHandler(),
	})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

func ensureSubscriptions(ctx context.Context, cfg webhookrx.Config, portals *portal.Registry, out io.Writer) error {
	if cfg.DeveloperAPIKey == "" {
		return errors.New("ensure subscriptions: SB_WEBHOOK_DEVELOPER_API_KEY (or _FILE) is required")
	}
	api, err := webhookrx.NewSubscriptionsClient(webhookrx.SubscriptionsConfig{
		BaseURL: cfg.HubSpotBaseURL, DeveloperAPIKey: cfg.DeveloperAPIKey.Reveal(),
	})
	if err != nil {
		return err
	}
	reports, err := webhookrx.EnsureAllSubscriptions(ctx, api, portals)
	for app, rep := range reports {
		fmt.Fprintf(out, "app %d: %d created, %d activated, %d paused, %d already active\n",
			app, len(rep.Created), len(rep.Activated), len(rep.Deactivated), rep.Unchanged)
		for _, list := range []struct {
			verb string
			subs []webhookrx.Subscription
		}{{"created", rep.Created}, {"activated", rep.Activated}, {"paused", rep.Deactivated}} {
			for _, s := range list.subs {
				fmt.Fprintf(out, "  %s %s\n", list.verb, s)
			}
		}
	}
	if len(reports) == 0 && err == nil {
		fmt.Fprintln(out, "no portal names a HubSpot app (hubspot.app_id); nothing to do")
	}
	return err
}

// secrets resolves secret names from portal configs: the environment
// variable NAME, else the file named by NAME_FILE (re-read at most once a
// minute, so a rotated mounted secret is picked up).
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
