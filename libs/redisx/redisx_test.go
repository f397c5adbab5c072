package redisx_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/signalbridge/signalbridge/libs/config"
	"github.com/signalbridge/signalbridge/libs/redisx"
	"github.com/signalbridge/signalbridge/libs/redisx/redistest"
)

func TestKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		portal, kind string
		parts        []string
		want         string
	}{
		{"123", "company", []string{"acme.com"}, "sb:{123}:company:acme.com"},
		{"123", "dedupe", []string{"signal", "abc"}, "sb:{123}:dedupe:signal:abc"},
		{"9", "ratelimit", nil, "sb:{9}:ratelimit"},
	}
	for _, tt := range tests {
		if got := redisx.Key(tt.portal, tt.kind, tt.parts...); got != tt.want {
			t.Errorf("Key(%q, %q, %q) = %q, want %q", tt.portal, tt.kind, tt.parts, got, tt.want)
		}
	}
}

func TestNewInstrumentsClient(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	reader := metric.NewManualReader()
	client, err := redisx.New(t.Context(), redisx.Config{
		URL:            redistest.URL(t),
		ReadTimeout:    5 * time.Second,
		WriteTimeout:   5 * time.Second,
		PoolSize:       3,
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)),
		MeterProvider:  metric.NewMeterProvider(metric.WithReader(reader)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	if got := client.Options().PoolSize; got != 3 {
		t.Errorf("PoolSize = %d, want 3", got)
	}

	key := redisx.Key(redistest.Portal(t, client), "probe", "1")
	if err := client.Set(t.Context(), key, "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := client.Get(t.Context(), key).Result(); err != nil || got != "v" {
		t.Fatalf("Get = %q, %v; want v", got, err)
	}

	var names []string
	for _, s := range spans.Ended() {
		names = append(names, s.Name())
	}
	for _, want := range []string{"ping", "set", "get"} {
		if !slices.Contains(names, want) {
			t.Errorf("spans %q lack %q", names, want)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	var metricNames []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			metricNames = append(metricNames, m.Name)
		}
	}
	if !slices.ContainsFunc(metricNames, func(n string) bool { return strings.HasPrefix(n, "db.client.") }) {
		t.Errorf("no db.client.* metrics; got %q", metricNames)
	}
}

func TestNewFailsOnClosedPort(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()

	client, err := redisx.New(t.Context(), redisx.Config{URL: "redis://" + addr + "/0"})
	if err == nil {
		_ = client.Close()
		t.Fatal("New against a closed port: no error")
	}
	for _, want := range []string{"ping " + addr, "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestNewRejectsBadURLWithoutLeakingPassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, want string
	}{
		{"scheme", "http://:hunter2@127.0.0.1:6379", "invalid URL"},
		{"db", "redis://:hunter2@127.0.0.1:6379/notanumber", "invalid URL"},
		{"escape", "redis://:hunter2@%zz", "invalid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := redisx.New(t.Context(), redisx.Config{URL: tt.url})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New(%q) error = %v, want %q", tt.url, err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestPasswordOverridesURL(t *testing.T) {
	t.Parallel()
	// The shared Redis runs with "nopass", which accepts any password, so
	// this test needs a server that checks one.
	mr := miniredis.RunT(t)
	mr.RequireAuth("hunter2")
	tests := []struct {
		name     string
		url      string
		password config.Secret
		wantErr  bool
	}{
		{"none", "redis://" + mr.Addr(), "", true},
		{"in URL", "redis://:hunter2@" + mr.Addr(), "", false},
		{"Password", "redis://" + mr.Addr(), "hunter2", false},
		{"Password over URL", "redis://:wrong@" + mr.Addr(), "hunter2", false},
		{"wrong Password", "redis://:hunter2@" + mr.Addr(), "wrong", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client, err := redisx.New(t.Context(), redisx.Config{URL: tt.url, Password: tt.password})
			if err == nil {
				_ = client.Close()
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("New error = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "wrong")) {
				t.Fatalf("error leaks a password: %v", err)
			}
		})
	}
}

func TestNewHonoursCallerContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	client, err := redisx.New(ctx, redisx.Config{URL: redistest.URL(t)})
	if err == nil {
		_ = client.Close()
		t.Fatal("New with a cancelled context: no error")
	}
}

func TestConfigLoadsFromEnv(t *testing.T) {
	t.Parallel()
	var cfg redisx.Config
	if err := config.Load("SB_REDIS", func(k string) string {
		return map[string]string{"SB_REDIS_POOL_SIZE": "7", "SB_REDIS_PASSWORD": "pw"}[k]
	}, &cfg); err != nil {
		t.Fatal(err)
	}
	want := redisx.Config{
		URL:          redisx.DefaultURL,
		Password:     "pw",
		DialTimeout:  redisx.DefaultDialTimeout,
		ReadTimeout:  redisx.DefaultReadTimeout,
		WriteTimeout: redisx.DefaultWriteTimeout,
		PoolSize:     7,
	}
	if cfg != want {
		t.Fatalf("loaded %+v, want %+v", cfg, want)
	}
}
