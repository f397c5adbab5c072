package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/service/servicetest"
	webhookrx "github.com/signalbridge/signalbridge/services/webhook-receiver"
)

func TestEnsureSubscriptionsFlag(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.Run(t)
	js := srv.JetStream(t)
	kv, err := js.KeyValue(ctx, natsx.BucketPortals)
	if err != nil {
		t.Fatal(err)
	}
	sb := hubspottest.NewTest(t, hubspottest.Options{})
	app := sb.AddApp(hubspottest.App{ClientSecret: "s", DeveloperAPIKey: "dev-key"})
	pc, err := portal.Parse(fmt.Appendf(nil, "portal_id: \"42\"\nname: p\nhubspot:\n  auth: { type: private_app, secret: T }\n  tier: starter\n  app_id: %d\n  webhook_secret: HS_SECRET\n", app))
	if err != nil {
		t.Fatal(err)
	}
	if err := portal.NewStore(kv).Put(ctx, pc); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"SB_NATS_URL": srv.URL(), "SB_LOG_LEVEL": "error",
		"SB_WEBHOOK_HUBSPOT_BASE_URL": sb.URL, "SB_WEBHOOK_DEVELOPER_API_KEY": "dev-key",
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"-ensure-subscriptions"}, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatal(err)
	}
	want := len(webhookrx.DesiredSubscriptions(pc))
	if !strings.Contains(out.String(), fmt.Sprintf("app %d: %d created, 0 activated, 0 paused, 0 already active", app, want)) {
		t.Fatalf("output:\n%s", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"-ensure-subscriptions"}, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("app %d: 0 created, 0 activated, 0 paused, %d already active", app, want)) {
		t.Fatalf("second run output:\n%s", out.String())
	}
	delete(env, "SB_WEBHOOK_DEVELOPER_API_KEY")
	if err := run(ctx, []string{"-ensure-subscriptions"}, func(k string) string { return env[k] }, &out); err == nil || !strings.Contains(err.Error(), "DEVELOPER_API_KEY") {
		t.Fatalf("without a developer key: %v", err)
	}
	if err := run(ctx, []string{"-no-such-flag"}, func(k string) string { return env[k] }, &out); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("unknown flag: %v", err)
	}
}

// TestRunServesUntilCancelled starts the whole process against an embedded NATS and stops it
// with its context, as SIGTERM does.
func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t)
	admin := servicetest.FreeAddr(t)
	env := map[string]string{
		"SB_NATS_URL": srv.URL(), "SB_LOG_LEVEL": "error",
		"SB_WEBHOOK_ADMIN_ADDR": admin, "SB_WEBHOOK_HTTP_ADDR": "127.0.0.1:0",
	}
	stop := servicetest.Serve(t, admin, func(ctx context.Context) error {
		return run(ctx, nil, func(k string) string { return env[k] }, io.Discard)
	})
	if err := stop(); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}
