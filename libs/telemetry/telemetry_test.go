package telemetry_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/signalbridge/signalbridge/libs/config"
	"github.com/signalbridge/signalbridge/libs/internal/testlog"
	"github.com/signalbridge/signalbridge/libs/telemetry"
)

// setup runs telemetry.Setup with logs captured in the returned buffer.
func setup(t *testing.T, cfg telemetry.Config) (*telemetry.Telemetry, *testlog.Buffer) {
	t.Helper()
	var buf testlog.Buffer
	tel, err := telemetry.Setup(t.Context(), cfg, &buf)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return tel, &buf
}

// jsonLines decodes one JSON object per line.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestLogRecordCarriesSpanIDs(t *testing.T) {
	t.Parallel()
	tel, buf := setup(t, telemetry.Config{ServiceName: "ingest", LogLevel: "debug"})

	ctx, span := tel.TracerProvider.Tracer("test").Start(t.Context(), "work")
	tel.Logger.DebugContext(ctx, "inside span")
	tel.Logger.With("portal", "42").InfoContext(ctx, "with attrs")
	span.End()
	tel.Logger.InfoContext(t.Context(), "outside span")

	lines := jsonLines(t, buf.String())
	if len(lines) != 3 {
		t.Fatalf("got %d log lines, want 3:\n%s", len(lines), buf)
	}
	sc := span.SpanContext()
	if !sc.IsValid() {
		t.Fatal("the SDK tracer provider made an invalid span context")
	}
	for _, l := range lines[:2] {
		if l["trace_id"] != sc.TraceID().String() || l["span_id"] != sc.SpanID().String() {
			t.Errorf("line %v: want trace_id %s span_id %s", l, sc.TraceID(), sc.SpanID())
		}
		if l["service"] != "ingest" {
			t.Errorf("line %v: want service=ingest", l)
		}
	}
	if lines[1]["portal"] != "42" {
		t.Errorf("line %v: lost the With attribute", lines[1])
	}
	if _, ok := lines[2]["trace_id"]; ok {
		t.Errorf("line outside a span has a trace_id: %v", lines[2])
	}
}

func TestLogHandlerUsesRemoteSpanContext(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(telemetry.NewLogHandler(slog.NewTextHandler(&buf, nil)))
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithRemoteSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	logger.InfoContext(ctx, "consumed")
	want := "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7"
	if !strings.Contains(buf.String(), want) {
		t.Fatalf("log %q lacks %q", buf.String(), want)
	}
}

func TestLogLevelAndFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level, format string
		wantLines     []string // substrings of the lines that must appear, in order
	}{
		{"", "", []string{`"msg":"info"`, `"msg":"warn"`}},
		{"warn", "json", []string{`"msg":"warn"`}},
		{"DEBUG", "text", []string{"msg=debug", "msg=info", "msg=warn"}},
	}
	for _, tt := range tests {
		t.Run(tt.level+"/"+tt.format, func(t *testing.T) {
			t.Parallel()
			tel, buf := setup(t, telemetry.Config{LogLevel: tt.level, LogFormat: tt.format})
			tel.Logger.Debug("debug")
			tel.Logger.Info("info")
			tel.Logger.Warn("warn")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != len(tt.wantLines) {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(tt.wantLines), buf)
			}
			for i, w := range tt.wantLines {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d %q: want %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestSetupRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  telemetry.Config
		want string
	}{
		{"level", telemetry.Config{LogLevel: "verbose"}, `LogLevel "verbose"`},
		{"format", telemetry.Config{LogFormat: "xml"}, `LogFormat "xml"`},
		{"endpoint scheme", telemetry.Config{OTLPEndpoint: "ftp://collector:4317"}, `OTLPEndpoint "ftp://collector:4317"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel, err := telemetry.Setup(t.Context(), tt.cfg, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Setup error = %v, want one naming %q", err, tt.want)
			}
			if tel != nil {
				t.Fatal("Setup returned a Telemetry along with an error")
			}
		})
	}
}

func TestMetricsHandlerServesOtelCounter(t *testing.T) {
	t.Parallel()
	tel, _ := setup(t, telemetry.Config{ServiceName: "ingest"})
	counter, err := tel.MeterProvider.Meter("test").Int64Counter("sb_test_signals")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(t.Context(), 2)
	counter.Add(t.Context(), 1)

	srv := httptest.NewServer(tel.MetricsHandler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	fam, ok := families["sb_test_signals_total"]
	if !ok {
		t.Fatalf("/metrics lacks sb_test_signals_total; has %v", slices.Sorted(maps.Keys(families)))
	}
	if got := fam.GetMetric()[0].GetCounter().GetValue(); got != 3 {
		t.Errorf("sb_test_signals_total = %v, want 3", got)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "target_info"} {
		if _, ok := families[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestSetupInstallsGlobals(t *testing.T) {
	t.Parallel()
	setup(t, telemetry.Config{})
	fields := otel.GetTextMapPropagator().Fields()
	for _, want := range []string{"traceparent", "tracestate", "baggage"} {
		if !slices.Contains(fields, want) {
			t.Errorf("global propagator fields %v lack %s", fields, want)
		}
	}
	_, span := otel.Tracer("test").Start(t.Context(), "global")
	defer span.End()
	if !span.SpanContext().IsValid() {
		t.Error("the global tracer provider is not an SDK provider")
	}
}

func TestShutdownTwice(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.Setup(t.Context(), telemetry.Config{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := tel.Shutdown(t.Context()); err != nil {
			t.Fatalf("Shutdown call %d: %v", i+1, err)
		}
	}
}

// collector is an in-process OTLP/gRPC trace receiver.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
	attrs []string
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			c.attrs = append(c.attrs, kv.GetKey()+"="+kv.GetValue().GetStringValue())
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.names = append(c.names, s.GetName())
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func TestSpansExportedToOTLPEndpoint(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	col := &collector{}
	collectortrace.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	tests := []struct{ name, endpoint string }{
		{"host:port", lis.Addr().String()},
		{"http URL", "http://" + lis.Addr().String()},
	}
	for _, tt := range tests {
		tel, err := telemetry.Setup(t.Context(), telemetry.Config{
			ServiceName: "ingest", ServiceVersion: "1.2.3", OTLPEndpoint: tt.endpoint,
		}, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%s: Setup: %v", tt.name, err)
		}
		_, span := tel.TracerProvider.Tracer("test").Start(t.Context(), "exported "+tt.name)
		span.End()
		if err := tel.Shutdown(t.Context()); err != nil { // flushes the batcher
			t.Fatalf("%s: Shutdown: %v", tt.name, err)
		}
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	if want := []string{"exported host:port", "exported http URL"}; !slices.Equal(col.names, want) {
		t.Errorf("collector got spans %q, want %q", col.names, want)
	}
	for _, want := range []string{"service.name=ingest", "service.version=1.2.3"} {
		if !slices.Contains(col.attrs, want) {
			t.Errorf("resource attributes %q lack %s", col.attrs, want)
		}
	}
}

func TestConfigLoadsFromEnv(t *testing.T) {
	t.Parallel()
	var cfg telemetry.Config
	if err := config.Load("SB", func(k string) string {
		return map[string]string{"SB_OTLP_ENDPOINT": "collector:4317", "SB_LOG_LEVEL": "warn"}[k]
	}, &cfg); err != nil {
		t.Fatal(err)
	}
	want := telemetry.Config{OTLPEndpoint: "collector:4317", LogLevel: "warn", LogFormat: "json"}
	if cfg != want {
		t.Fatalf("loaded %+v, want %+v", cfg, want)
	}
}
