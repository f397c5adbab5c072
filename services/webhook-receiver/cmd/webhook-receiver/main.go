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
	"syscall"
	"time"

	"github.com/signalbridge/signalbridge/libs/config"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/service"
	webhookrx "github.com/signalbridge/signalbridge/services/webhook-receiver"
)

type settings struct {
	Webhook webhookrx.Config `env:"WEBHOOK"`
	service.Settings
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
	base, err := service.Start(ctx, "webhook-receiver", webhookrx.Version, cfg, os.Stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, base.Close()) }()

	if *ensure {
		return ensureSubscriptions(ctx, cfg.Webhook, base.Portals, stdout)
	}
	tel := base.Telemetry
	svc, err := webhookrx.New(cfg.Webhook, webhookrx.Deps{
		NC: base.NC, JS: base.JS, Portals: base.Portals, Logger: base.Logger,
		Secrets: service.NewSecrets(getenv, os.ReadFile, time.Now).Lookup,
		Meter:   tel.MeterProvider, Tracer: tel.TracerProvider, Metrics: tel.MetricsHandler(),
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
