package embedded_test

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/signalbridge/signalbridge/libs/natsx/embedded"
)

func start(t *testing.T, opts embedded.Options) *embedded.Server {
	t.Helper()
	s, err := embedded.Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func TestStartDurability(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		lazy       bool
		syncAlways bool
	}{
		{"default syncs always", false, true},
		{"lazy fsync opt-out", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, embedded.Options{StoreDir: t.TempDir(), LazyFsync: tt.lazy})
			cfg := s.Inner().JetStreamConfig()
			if cfg == nil {
				t.Fatal("JetStream is not enabled")
			}
			if cfg.SyncAlways != tt.syncAlways {
				t.Fatalf("SyncAlways = %v, want %v", cfg.SyncAlways, tt.syncAlways)
			}
		})
	}
}

func TestStartRandomPortsAndConnect(t *testing.T) {
	t.Parallel()
	a := start(t, embedded.Options{StoreDir: t.TempDir()})
	b := start(t, embedded.Options{StoreDir: t.TempDir(), Port: -1})
	if a.Port() == 0 || a.Port() == b.Port() {
		t.Fatalf("ports %d and %d, want two different random ports", a.Port(), b.Port())
	}
	if !strings.HasSuffix(a.ClientURL(), ":"+strconv.Itoa(a.Port())) {
		t.Fatalf("ClientURL %q does not use port %d", a.ClientURL(), a.Port())
	}
	for _, opt := range []nats.Option{nil, a.InProcessOption()} {
		opts := []nats.Option{}
		if opt != nil {
			opts = append(opts, opt)
		}
		nc, err := nats.Connect(a.ClientURL(), opts...)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		resp, err := nc.Request("$JS.API.INFO", nil, 5*time.Second)
		if err != nil || !strings.Contains(string(resp.Data), "io.nats.jetstream.api.v1.account_info_response") {
			t.Fatalf("JetStream account info = %v, %v", resp, err)
		}
		nc.Close()
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = busy.Close() })
	busyPort := busy.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name   string
		opts   embedded.Options
		want   string
		notRdy bool
	}{
		{"no store dir", embedded.Options{}, "StoreDir is empty", false},
		{"bad port", embedded.Options{StoreDir: t.TempDir(), Port: 70000}, "out of range", false},
		{"port in use", embedded.Options{StoreDir: t.TempDir(), Port: busyPort}, "listening", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := embedded.Start(tt.opts)
			if err == nil {
				s.Shutdown()
				t.Fatalf("Start(%+v) succeeded", tt.opts)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start error %q does not mention %q", err, tt.want)
			}
			if tt.notRdy != errors.Is(err, embedded.ErrNotReady) {
				t.Fatalf("Start error %v: errors.Is(ErrNotReady) = %v, want %v", err, !tt.notRdy, tt.notRdy)
			}
		})
	}
}
