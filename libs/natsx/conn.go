package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Config says how to reach NATS. Credentials are optional; at most one kind
// (Token, User/Password, CredsFile) may be set.
type Config struct {
	// URL of the server(s), comma separated, e.g. nats://127.0.0.1:4222. Required.
	URL string
	// Name identifies the connection in server monitoring, e.g. "ingest".
	Name string
	// Token authenticates with a bearer token.
	Token string
	// User and Password authenticate with a user name and password.
	User     string
	Password string
	// CredsFile is a path to a .creds file (JWT and nkey seed).
	CredsFile string
	// ConnectTimeout bounds each dial attempt; 0 uses the client default (2s).
	ConnectTimeout time.Duration
}

// reconnectWait is the pause between reconnect attempts to the same server.
const reconnectWait = time.Second

// Validate reports what is wrong with the config, if anything.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("natsx: Config.URL is empty"))
	}
	kinds := 0
	if c.Token != "" {
		kinds++
	}
	if c.User != "" || c.Password != "" {
		kinds++
		if c.User == "" {
			errs = append(errs, errors.New("natsx: Config.Password is set but Config.User is empty"))
		}
	}
	if c.CredsFile != "" {
		kinds++
	}
	if kinds > 1 {
		errs = append(errs, errors.New("natsx: set only one of Config.Token, Config.User/Password, Config.CredsFile"))
	}
	if c.ConnectTimeout < 0 {
		errs = append(errs, fmt.Errorf("natsx: Config.ConnectTimeout %s is negative", c.ConnectTimeout))
	}
	return errors.Join(errs...)
}

// Connect opens a connection that retries the first connect and reconnects
// forever (RetryOnFailedConnect, MaxReconnects(-1)), logging disconnects,
// reconnects and asynchronous errors. It returns once the connection is up;
// if ctx ends first, the connection is closed and the error wraps
// ErrUnavailable. opts are applied after the defaults, so they win.
func Connect(ctx context.Context, cfg Config, logger *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	log := logger.With("component", "nats", "url", cfg.URL)

	all := []nats.Option{
		nats.Name(cfg.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
				return
			}
			log.Info("nats disconnected")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats connected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(_ *nats.Conn) {
			log.Info("nats connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Error("nats async error", "subject", sub.Subject, "err", err)
				return
			}
			log.Error("nats async error", "err", err)
		}),
	}
	if cfg.ConnectTimeout > 0 {
		all = append(all, nats.Timeout(cfg.ConnectTimeout))
	}
	switch {
	case cfg.Token != "":
		all = append(all, nats.Token(cfg.Token))
	case cfg.User != "":
		all = append(all, nats.UserInfo(cfg.User, cfg.Password))
	case cfg.CredsFile != "":
		all = append(all, nats.UserCredentials(cfg.CredsFile))
	}
	all = append(all, opts...)

	nc, err := nats.Connect(cfg.URL, all...)
	if err != nil {
		return nil, fmt.Errorf("natsx: connect %s: %w", cfg.URL, err)
	}
	if err := waitConnected(ctx, nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsx: connect %s: %w", cfg.URL, err)
	}
	return nc, nil
}

// waitConnected blocks until nc is connected, closed, or ctx ends.
func waitConnected(ctx context.Context, nc *nats.Conn) error {
	ch := nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	defer nc.RemoveStatusListener(ch)
	for {
		switch nc.Status() {
		case nats.CONNECTED:
			return nil
		case nats.CLOSED:
			return fmt.Errorf("%w: connection closed before it was established", ErrUnavailable)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: not connected: %w", ErrUnavailable, context.Cause(ctx))
		}
	}
}
