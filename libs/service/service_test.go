package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/config"
	"github.com/signalbridge/signalbridge/libs/internal/testlog"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/libs/service"
)

// settings is a service's whole settings struct, as a main declares it.
type settings struct {
	APIKey config.Secret `env:"DEMO_API_KEY" desc:"a secret of the service itself"`
	service.Settings
}

func load(t *testing.T, env map[string]string) settings {
	t.Helper()
	var cfg settings
	if err := config.Load("SB", func(k string) string { return env[k] }, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestSettingsKeepTheirEnvironmentNames(t *testing.T) {
	t.Parallel()
	want := []config.Var{
		{Name: "SB_DEMO_API_KEY", Secret: true, Desc: "a secret of the service itself"},
		{Name: "SB_NATS_URL", Default: "nats://127.0.0.1:4222", Desc: "NATS server URL(s), comma separated"},
		{Name: "SB_NATS_TOKEN", Secret: true, Desc: "NATS token (or SB_NATS_TOKEN_FILE)"},
		{Name: "SB_NATS_PROVISION", Default: "true", Desc: "create or update streams and KV buckets at start"},
		{Name: "SB_NATS_REPLICAS", Default: "1", Desc: "replicas of the streams and buckets it provisions: 1 for one server, 3 on a cluster"},
		{Name: "SB_OTEL_ENDPOINT", Desc: "OTLP/gRPC endpoint for traces; empty: no export"},
		{Name: "SB_LOG_LEVEL", Default: "info", Desc: "debug, info, warn or error"},
		{Name: "SB_LOG_FORMAT", Default: "json", Desc: "json or text"},
	}
	got := config.Describe("SB", settings{})
	if len(got) != len(want) {
		t.Fatalf("Describe = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("variable %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	cfg := load(t, map[string]string{})
	if cfg.NATSURL != "nats://127.0.0.1:4222" || !cfg.Provision || cfg.LogLevel != "info" || cfg.LogFormat != "json" {
		t.Errorf("defaults: %+v", cfg.Settings)
	}
}

func TestStartConnectsProvisionsWatchesPortalsAndCloses(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t)
	cfg := load(t, map[string]string{
		"SB_NATS_URL": srv.URL(), "SB_NATS_TOKEN": "nats-token-value", "SB_DEMO_API_KEY": "api-key-value", "SB_LOG_FORMAT": "text",
	})
	var logs testlog.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := service.Start(ctx, "demo", "1.2.3", cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "demo starting") || !strings.Contains(out, "NATS_TOKEN=***") || !strings.Contains(out, "DEMO_API_KEY=***") {
		t.Errorf("start log lacks the masked configuration:\n%s", out)
	}
	if strings.Contains(out, "nats-token-value") || strings.Contains(out, "api-key-value") {
		t.Errorf("start log reveals a secret:\n%s", out)
	}
	if !b.NC.IsConnected() || b.Logger != b.Telemetry.Logger {
		t.Fatal("not connected, or two loggers")
	}
	if name := b.NC.Opts.Name; name != "demo" {
		t.Errorf("connection name %q", name)
	}
	// Provisioned: the streams exist; the registry follows the portals bucket.
	if _, err := b.JS.Stream(ctx, natsx.StreamSignals); err != nil {
		t.Fatalf("SIGNALS not provisioned: %v", err)
	}
	kv, err := b.JS.KeyValue(ctx, natsx.BucketPortals)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := portal.Parse([]byte("portal_id: \"42\"\nname: p\nhubspot:\n  auth: { type: private_app, secret: T }\n  tier: starter\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := portal.NewStore(kv).Put(ctx, pc); err != nil {
		t.Fatal(err)
	}
	for _, ok := b.Portals.Get("42"); !ok; _, ok = b.Portals.Get("42") {
		if ctx.Err() != nil {
			t.Fatal("portal 42 never reached the registry")
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !b.NC.IsClosed() {
		t.Error("NATS connection not closed by Close")
	}
}

func TestStartFailuresReleaseWhatWasStarted(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t) // no topology: the portals bucket is missing without provisioning
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad log format", map[string]string{"SB_LOG_FORMAT": "xml"}, "telemetry: "},
		{"no portals bucket", map[string]string{"SB_NATS_URL": srv.URL(), "SB_NATS_PROVISION": "false"}, "portals bucket: "},
		// SB_NATS_REPLICAS reaches the topology: one server cannot hold 3 replicas.
		{"replicas beyond the servers", map[string]string{"SB_NATS_URL": srv.URL(), "SB_NATS_REPLICAS": "3"}, "provision: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := service.Start(ctx, "demo", "1", load(t, tc.env), &testlog.Buffer{})
			if err == nil || b != nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Start = %v, %v; want an error starting %q", b, err, tc.want)
			}
		})
	}
	// The failed start closed its connection: the server has no client left.
	deadline := time.Now().Add(10 * time.Second)
	for srv.Inner().Inner().NumClients() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d NATS clients left after failed starts", srv.Inner().Inner().NumClients())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartGivesUpWhenNATSDoesNotAnswer(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t)
	url := srv.URL()
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := service.Start(ctx, "demo", "1", load(t, map[string]string{"SB_NATS_URL": url}), &testlog.Buffer{})
	if err == nil || !strings.HasPrefix(err.Error(), "nats: ") {
		t.Fatalf("Start = %v, want a nats error", err)
	}
}
