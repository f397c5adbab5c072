package service_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/service"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

func TestAdminServesProbesMetricsAndExtraRoutes(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	a, err := service.ListenAdmin("127.0.0.1:0", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metric 1\n")) }))
	if err != nil {
		t.Fatal(err)
	}
	a.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) })
	served := make(chan error, 1)
	go func() { served <- a.Serve() }()
	base := "http://" + a.Addr()

	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/healthz", 200, "ok\n"}, {"/readyz", 503, "starting\n"}, {"/metrics", 200, "metric 1\n"},
		{"/status", 200, "{}"}, {"/nope", 404, "404 page not found\n"},
	} {
		if status, body := get(t, base+tc.path); status != tc.status || body != tc.body {
			t.Errorf("GET %s = %d %q, want %d %q", tc.path, status, body, tc.status, tc.body)
		}
	}
	ready.Store(true)
	if status, _ := get(t, base+"/readyz"); status != 200 {
		t.Errorf("/readyz once ready: %d", status)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close after Shutdown: %v", err)
	}
}

func TestAdminWithoutMetricsAndNeverServed(t *testing.T) {
	t.Parallel()
	a, err := service.ListenAdmin("127.0.0.1:0", func(http.ResponseWriter, *http.Request) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The address is taken while bound.
	if _, err := service.ListenAdmin(a.Addr(), nil, nil); err == nil || !strings.Contains(err.Error(), "admin listen "+a.Addr()) {
		t.Fatalf("second listener on %s: %v", a.Addr(), err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close of a never served listener: %v", err)
	}
	// Closed: the address is free again.
	b, err := service.ListenAdmin(a.Addr(), func(http.ResponseWriter, *http.Request) {}, nil)
	if err != nil {
		t.Fatalf("address not released by Close: %v", err)
	}
	go func() { _ = b.Serve() }()
	if status, _ := get(t, "http://"+b.Addr()+"/metrics"); status != http.StatusNotFound {
		t.Errorf("/metrics without a handler: %d", status)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNATSReady(t *testing.T) {
	t.Parallel()
	nc := natstest.Run(t).Connect(t)
	rec := httptest.NewRecorder()
	if !service.NATSReady(rec, nc) || rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Fatalf("connected: %d %q", rec.Code, rec.Body)
	}
	nc.Close()
	rec = httptest.NewRecorder()
	if service.NATSReady(rec, nc) || rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "nats: CLOSED\n" {
		t.Fatalf("closed: %d %q", rec.Code, rec.Body)
	}
}
