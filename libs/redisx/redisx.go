// Package redisx opens instrumented go-redis clients and builds the
// platform's Redis keys.
package redisx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/signalbridge/signalbridge/libs/config"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultURL          = "redis://127.0.0.1:6379/0"
	DefaultDialTimeout  = time.Second
	DefaultReadTimeout  = 200 * time.Millisecond
	DefaultWriteTimeout = 200 * time.Millisecond
)

// Config configures New. Zero fields take the defaults above.
type Config struct {
	// URL is redis://[user[:password]@]host:port/db or rediss:// for TLS.
	// Prefer Password for the secret, since URL is printed in the clear.
	URL string `env:"URL" default:"redis://127.0.0.1:6379/0" desc:"redis:// or rediss:// URL (host, port, db)"`
	// Password, when set, replaces the URL's password.
	Password     config.Secret `env:"PASSWORD" desc:"Redis password; overrides the URL's"`
	DialTimeout  time.Duration `env:"DIAL_TIMEOUT" default:"1s"`
	ReadTimeout  time.Duration `env:"READ_TIMEOUT" default:"200ms"`
	WriteTimeout time.Duration `env:"WRITE_TIMEOUT" default:"200ms"`
	// PoolSize is the maximum number of connections; zero keeps go-redis's
	// default of 10 per GOMAXPROCS.
	PoolSize int `env:"POOL_SIZE" desc:"connection pool size; 0 means 10 per CPU"`

	// TracerProvider and MeterProvider instrument the client; nil means the
	// otel globals.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// New opens a client with OpenTelemetry tracing and metrics and checks it
// with a PING bounded by DialTimeout+ReadTimeout. The error names the
// address (never the password). Close the client when done.
func New(ctx context.Context, cfg Config) (*redis.Client, error) {
	cfg = withDefaults(cfg)
	opts, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Password != "" {
		opts.Password = cfg.Password.Reveal()
	}
	opts.DialTimeout = cfg.DialTimeout
	opts.ReadTimeout = cfg.ReadTimeout
	opts.WriteTimeout = cfg.WriteTimeout
	if cfg.PoolSize > 0 {
		opts.PoolSize = cfg.PoolSize
	}

	client := redis.NewClient(opts)
	dialErr := new(lastDialError)
	client.AddHook(dialErr)
	var tracing []redisotel.TracingOption
	if cfg.TracerProvider != nil {
		tracing = append(tracing, redisotel.WithTracerProvider(cfg.TracerProvider))
	}
	if err := redisotel.InstrumentTracing(client, tracing...); err != nil {
		return nil, errors.Join(fmt.Errorf("redisx: instrument tracing: %w", err), client.Close())
	}

	pingCtx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+cfg.ReadTimeout)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		if last := dialErr.get(); last != nil && !errors.Is(err, last) {
			err = fmt.Errorf("%w; last dial error: %w", err, last)
		}
		return nil, errors.Join(fmt.Errorf("redisx: ping %s: %w", opts.Addr, err), client.Close())
	}

	// Metrics register a pool-stats callback for the client's lifetime, so
	// only a client that works gets them.
	var metrics []redisotel.MetricsOption
	if cfg.MeterProvider != nil {
		metrics = append(metrics, redisotel.WithMeterProvider(cfg.MeterProvider))
	}
	if err := redisotel.InstrumentMetrics(client, metrics...); err != nil {
		return nil, errors.Join(fmt.Errorf("redisx: instrument metrics: %w", err), client.Close())
	}
	return client, nil
}

// lastDialError is a hook that remembers the last failed dial: the pool
// retries dials until the deadline, and the ping then reports only
// "context deadline exceeded".
type lastDialError struct{ err atomic.Pointer[error] }

func (h *lastDialError) get() error {
	if p := h.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (h *lastDialError) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			h.err.Store(&err)
		}
		return conn, err
	}
}

func (h *lastDialError) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *lastDialError) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func withDefaults(cfg Config) Config {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	return cfg
}

// parseURL parses a Redis URL without echoing its password in errors.
func parseURL(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redisx: invalid URL: %w", err)
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("redisx: invalid URL %s: %w", u.Redacted(), err)
	}
	return opts, nil
}

// Key builds "sb:{portal}:kind:part:...". The braces make portal the Redis
// Cluster hash tag, so all of a portal's keys live on one slot and can be
// used together in transactions and scripts. portal must not contain '{' or
// '}'.
func Key(portal, kind string, parts ...string) string {
	var b strings.Builder
	b.Grow(len("sb:{}:") + len(portal) + len(kind) + 16*len(parts))
	b.WriteString("sb:{")
	b.WriteString(portal)
	b.WriteString("}:")
	b.WriteString(kind)
	for _, p := range parts {
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}
