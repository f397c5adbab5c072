package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
)

// Admin is a service's operational HTTP listener: GET /healthz (the process answers), GET
// /readyz (the service's own check), GET /metrics (when a metrics handler is given) and any
// routes the service adds with HandleFunc. Serve it in the service's Run, and shut it down
// last so that probes see the drain.
type Admin struct {
	mux *http.ServeMux
	srv *http.Server
	lis net.Listener
}

// ListenAdmin binds addr and returns the admin listener, not yet serving. ready answers
// /readyz; metrics, when not nil, serves /metrics.
func ListenAdmin(addr string, ready http.HandlerFunc, metrics http.Handler) (*Admin, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", ready)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return &Admin{mux: mux, lis: lis, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}, nil
}

// HandleFunc adds a route (a net/http ServeMux pattern such as "GET /status").
func (a *Admin) HandleFunc(pattern string, h http.HandlerFunc) { a.mux.HandleFunc(pattern, h) }

// Addr is the bound address.
func (a *Admin) Addr() string { return a.lis.Addr().String() }

// Serve serves until Shutdown or Close; it returns nil then, and the serving error otherwise.
func (a *Admin) Serve() error {
	if err := a.srv.Serve(a.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin serve %s: %w", a.Addr(), err)
	}
	return nil
}

// Shutdown stops serving, letting requests in flight finish until ctx ends.
func (a *Admin) Shutdown(ctx context.Context) error { return a.srv.Shutdown(ctx) }

// Close closes the listener at once, also when Serve was never called.
func (a *Admin) Close() error {
	err := a.srv.Close()
	if lerr := a.lis.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) {
		err = errors.Join(err, lerr)
	}
	return err
}

// NATSReady is the first check of a /readyz handler: when nc is not connected it answers 503
// with the connection's status and returns false.
func NATSReady(w http.ResponseWriter, nc *nats.Conn) bool {
	if nc.IsConnected() {
		return true
	}
	http.Error(w, "nats: "+nc.Status().String(), http.StatusServiceUnavailable)
	return false
}
