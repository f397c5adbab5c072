// Package servicetest runs a service main's run function in a test: start it, wait until its
// admin listener answers /readyz, stop it as SIGTERM would.
package servicetest

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// FreeAddr returns a loopback address that was free a moment ago, for a listener whose
// address the test must know in advance (an admin listener configured by environment).
func FreeAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servicetest: %v", err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

// Serve calls run in the background and returns once GET http://<admin>/readyz answers 200,
// failing the test when run returns first or readiness takes longer than 30 s. stop cancels
// run's context and returns what run returned.
func Serve(t testing.TB, admin string, run func(ctx context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return stop
			}
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("servicetest: run returned before it was ready: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("servicetest: not ready on %s after 30 s (last: %v)", admin, err)
		}
	}
}
