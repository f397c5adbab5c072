// Package embedded runs an in-process nats-server with JetStream enabled, for
// the all-in-one devstack binary and for tests.
//
// By default the server syncs every JetStream write to disk before it
// acknowledges it (SyncAlways): the default lazy fsync loses acknowledged
// messages on an OS crash or power failure (see design/durability.md).
package embedded

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// readyTimeout bounds how long Start waits for the server to accept clients.
const readyTimeout = 10 * time.Second

// ErrNotReady is returned by Start when the server does not come up in time
// or reports a fatal error while starting.
var ErrNotReady = errors.New("embedded nats-server not ready")

// Options configures an embedded server.
type Options struct {
	// Host to listen on; default 127.0.0.1.
	Host string
	// Port to listen on. 0 or -1 pick a random free port; devstack passes 4222.
	Port int
	// StoreDir is the JetStream storage directory. Required.
	StoreDir string
	// LazyFsync opts out of syncing every write before acknowledging it.
	// Leave false (the default) unless losing acknowledged writes on an OS
	// crash is acceptable; see design/durability.md.
	LazyFsync bool
	// ServerName names the server (shown in monitoring and advisories).
	ServerName string
	// Logger receives the server's log lines. Nil discards them.
	Logger *slog.Logger
	// ProcessEnv is added to the environment of a server started by
	// StartProcess (for example GODEBUG=gctrace=1); Start ignores it.
	ProcessEnv []string
	// ProcessStderr receives the standard error of a server started by
	// StartProcess (the Go runtime's traces among it); nil is os.Stderr.
	// Start ignores it.
	ProcessStderr io.Writer
}

// Server is a running embedded nats-server.
type Server struct {
	inner *server.Server
}

// Start starts a server with JetStream enabled and waits until it accepts
// client connections (up to 10s).
func Start(opts Options) (*Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("embedded: Options.StoreDir is empty; JetStream needs a storage directory")
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := opts.Port
	switch {
	case port == 0:
		port = server.RANDOM_PORT
	case port < -1 || port > 65535:
		return nil, fmt.Errorf("embedded: Options.Port %d is out of range (0 or -1 for random, 1-65535)", opts.Port)
	}

	sopts := &server.Options{
		ServerName: opts.ServerName,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		SyncAlways: !opts.LazyFsync,
		NoLog:      true, // logging goes through SetLoggerV2 below
		NoSigs:     true,
	}
	s, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded: new server: %w", err)
	}
	lg := newLogAdapter(opts.Logger)
	s.SetLoggerV2(lg, false, false, false)

	go s.Start()

	deadline := time.Now().Add(readyTimeout)
	for !s.ReadyForConnections(50 * time.Millisecond) {
		if ferr := lg.fatalErr(); ferr != nil {
			shutdown(s)
			return nil, fmt.Errorf("embedded: %w: %w", ErrNotReady, ferr)
		}
		if time.Now().After(deadline) {
			shutdown(s)
			return nil, fmt.Errorf("embedded: %w within %s on %s", ErrNotReady, readyTimeout, net.JoinHostPort(host, fmt.Sprint(opts.Port)))
		}
	}
	if ferr := lg.fatalErr(); ferr != nil {
		shutdown(s)
		return nil, fmt.Errorf("embedded: %w: %w", ErrNotReady, ferr)
	}
	if !s.JetStreamEnabled() {
		shutdown(s)
		return nil, fmt.Errorf("embedded: %w: JetStream did not start (store dir %q)", ErrNotReady, opts.StoreDir)
	}
	return &Server{inner: s}, nil
}

// ClientURL is the URL clients connect to, e.g. nats://127.0.0.1:4222.
func (s *Server) ClientURL() string { return s.inner.ClientURL() }

// Port is the TCP port the server listens on (useful after a random pick).
func (s *Server) Port() int {
	if addr, ok := s.inner.Addr().(*net.TCPAddr); ok {
		return addr.Port
	}
	return 0
}

// InProcessOption makes a nats.Connect use an in-process pipe to this server
// instead of TCP.
func (s *Server) InProcessOption() nats.Option { return nats.InProcessServer(s.inner) }

// Shutdown stops the server and waits until it has stopped. JetStream data in
// the store directory is kept. Safe to call more than once.
func (s *Server) Shutdown() { shutdown(s.inner) }

// Inner exposes the nats-server for what this package does not wrap.
func (s *Server) Inner() *server.Server { return s.inner }

func shutdown(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}
