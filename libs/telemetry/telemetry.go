// Package telemetry sets up logging, tracing and metrics for a service:
// slog with trace correlation, an OpenTelemetry SDK tracer provider (OTLP
// gRPC export when configured) and an OpenTelemetry meter provider exported
// to Prometheus through its own registry.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Config selects what Setup builds. The env tags let a service embed it in
// its own config struct (see package config); ServiceName and ServiceVersion
// come from the service's code and build.
type Config struct {
	// ServiceName is the service.name resource attribute and the "service"
	// attribute of every log record.
	ServiceName string
	// ServiceVersion is the service.version resource attribute.
	ServiceVersion string
	// OTLPEndpoint is the OTLP/gRPC collector, as host:port (plaintext),
	// http://host:port (plaintext) or https://host:port (TLS). Empty disables
	// export; spans and trace ids still exist for logs and propagation.
	OTLPEndpoint string `env:"OTLP_ENDPOINT" desc:"OTLP/gRPC trace collector (host:port or http(s)://host:port); empty disables export"`
	// LogLevel is debug, info, warn or error; empty means info.
	LogLevel string `env:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	// LogFormat is json or text; empty means json.
	LogFormat string `env:"LOG_FORMAT" default:"json" desc:"json or text"`
}

// Telemetry holds the providers Setup built. Pass them explicitly where a
// library accepts them; Setup also installs them as the otel globals.
type Telemetry struct {
	// Logger writes to Setup's out and adds trace_id and span_id.
	Logger *slog.Logger
	// Level is the Logger's level; Set changes it at run time.
	Level *slog.LevelVar
	// TracerProvider is an SDK tracer provider.
	TracerProvider trace.TracerProvider
	// MeterProvider is an SDK meter provider exporting into Registry.
	MeterProvider metric.MeterProvider
	// Registry holds the otel metrics plus the Go runtime and process
	// collectors; serve it with MetricsHandler.
	Registry *prometheus.Registry
	// Propagator is TraceContext plus Baggage.
	Propagator propagation.TextMapPropagator

	shutdowns    []func(context.Context) error
	shutdownOnce sync.Once
	shutdownErr  error
}

// Setup builds the logger and the tracer and meter providers, and installs
// the providers, the TraceContext+Baggage propagator and an error handler
// that logs otel's internal errors as the otel globals. Logs go to out
// (os.Stderr when nil). Call Shutdown to flush before exit.
func Setup(ctx context.Context, cfg Config, out io.Writer) (*Telemetry, error) {
	level, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = os.Stderr
	}
	levelVar := new(slog.LevelVar)
	levelVar.Set(level)
	handler, err := newFormatHandler(cfg.LogFormat, out, levelVar)
	if err != nil {
		return nil, err
	}
	exporterOpts, err := traceExporterOptions(cfg.OTLPEndpoint)
	if err != nil {
		return nil, err
	}
	logger := slog.New(NewLogHandler(handler))
	if cfg.ServiceName != "" {
		logger = logger.With("service", cfg.ServiceName)
	}

	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}

	t := &Telemetry{Logger: logger, Level: levelVar, Registry: prometheus.NewRegistry()}
	fail := func(err error) (*Telemetry, error) {
		return nil, errors.Join(err, t.Shutdown(ctx))
	}

	traceOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	}
	if exporterOpts != nil {
		exp, err := otlptracegrpc.New(ctx, exporterOpts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: otlp trace exporter: %w", err)
		}
		traceOpts = append(traceOpts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(traceOpts...)
	t.TracerProvider = tp
	t.shutdowns = append(t.shutdowns, tp.Shutdown)

	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := t.Registry.Register(c); err != nil {
			return fail(fmt.Errorf("telemetry: register runtime collector: %w", err))
		}
	}
	promExp, err := otelprom.New(otelprom.WithRegisterer(t.Registry))
	if err != nil {
		return fail(fmt.Errorf("telemetry: prometheus exporter: %w", err))
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(promExp))
	t.MeterProvider = mp
	t.shutdowns = append(t.shutdowns, mp.Shutdown)

	t.Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	otel.SetTextMapPropagator(t.Propagator)
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry error", "err", err)
	}))
	return t, nil
}

// MetricsHandler serves Registry in the Prometheus exposition format, for
// /metrics.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{Registry: t.Registry})
}

// Shutdown flushes and stops the providers, joining their errors. Later
// calls return the first call's result.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdownOnce.Do(func() {
		var errs []error
		for i := len(t.shutdowns) - 1; i >= 0; i-- {
			errs = append(errs, t.shutdowns[i](ctx))
		}
		if err := errors.Join(errs...); err != nil {
			t.shutdownErr = fmt.Errorf("telemetry: shutdown: %w", err)
		}
	})
	return t.shutdownErr
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("telemetry: LogLevel %q: want debug, info, warn or error", s)
	}
}

func newFormatHandler(format string, out io.Writer, level slog.Leveler) (slog.Handler, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(format) {
	case "", "json":
		return slog.NewJSONHandler(out, opts), nil
	case "text":
		return slog.NewTextHandler(out, opts), nil
	default:
		return nil, fmt.Errorf("telemetry: LogFormat %q: want json or text", format)
	}
}

// traceExporterOptions turns OTLPEndpoint into exporter options; nil means
// no export.
func traceExporterOptions(endpoint string) ([]otlptracegrpc.Option, error) {
	if endpoint == "" {
		return nil, nil
	}
	if !strings.Contains(endpoint, "://") {
		return []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure()}, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("telemetry: OTLPEndpoint %q: want host:port, http://host:port or https://host:port", endpoint)
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(u.Host)}
	if u.Scheme == "http" {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	return opts, nil
}

func newResource(ctx context.Context, cfg Config) (*resource.Resource, error) {
	var attrs []attribute.KeyValue
	if cfg.ServiceName != "" {
		attrs = append(attrs, semconv.ServiceName(cfg.ServiceName))
	}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(cfg.ServiceVersion))
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithHost(), resource.WithAttributes(attrs...))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}
