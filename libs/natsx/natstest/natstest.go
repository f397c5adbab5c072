// Package natstest runs an embedded JetStream server for tests: random
// port, a temporary store directory, sync-always writes, no logging. It can
// be stopped and restarted on the same port and store, to test outages.
package natstest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/embedded"
)

// reconnectWait is short so clients come back quickly after Restart.
const reconnectWait = 20 * time.Millisecond

// Server is an embedded JetStream server owned by a test.
type Server struct {
	storeDir string
	port     int
	url      string

	mu  sync.Mutex
	srv *embedded.Server // nil while stopped
}

// Run starts a server and stops it when the test ends.
func Run(t testing.TB) *Server {
	t.Helper()
	s := &Server{storeDir: t.TempDir()}
	srv, err := embedded.Start(embedded.Options{StoreDir: s.storeDir, ServerName: "natstest"})
	if err != nil {
		t.Fatalf("natstest: start server: %v", err)
	}
	s.srv, s.port, s.url = srv, srv.Port(), srv.ClientURL()
	t.Cleanup(s.Stop)
	return s
}

// URL is the client URL (the same across restarts).
func (s *Server) URL() string { return s.url }

// StoreDir is the JetStream store directory (kept across restarts).
func (s *Server) StoreDir() string { return s.storeDir }

// Inner is the running embedded server, or nil while stopped.
func (s *Server) Inner() *embedded.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Stop shuts the server down and waits until it is down. JetStream data is
// kept for Restart. Safe to call when already stopped.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
	}
}

// Restart starts the server again on the same port and store directory and
// returns once it accepts connections. Clients from Connect reconnect by
// themselves shortly after.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		t.Fatalf("natstest: restart: server is still running")
	}
	srv, err := embedded.Start(embedded.Options{StoreDir: s.storeDir, Port: s.port, ServerName: "natstest"})
	if err != nil {
		t.Fatalf("natstest: restart on port %d: %v", s.port, err)
	}
	s.srv = srv
}

// Connect returns a client that retries and reconnects forever (so it
// survives Stop and Restart); it is closed when the test ends.
func (s *Server) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := natsx.Connect(ctx, natsx.Config{URL: s.url, Name: t.Name()}, nil,
		nats.ReconnectWait(reconnectWait), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatalf("natstest: connect %s: %v", s.url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// BareJetStream returns a JetStream context on a new Connect, with nothing
// provisioned: for tests of provisioning itself, or of their own streams.
func (s *Server) BareJetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(s.Connect(t))
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return js
}

// JetStream returns a JetStream context on a new Connect, with
// natsx.DefaultTopology provisioned.
func (s *Server) JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	js := s.BareJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := natsx.Provision(ctx, js, natsx.DefaultTopology(natsx.TopologyOptions{})); err != nil {
		t.Fatalf("natstest: provision topology: %v", err)
	}
	return js
}
