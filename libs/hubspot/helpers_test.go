package hubspot_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// sandbox starts a HubSpot sandbox with one portal.
func sandbox(t testing.TB, opts hubspottest.Options, popts hubspottest.PortalOptions) (*hubspottest.Server, *hubspottest.Portal) {
	t.Helper()
	srv := hubspottest.NewTest(t, opts)
	p, err := srv.CreatePortal(popts)
	if err != nil {
		t.Fatal(err)
	}
	return srv, p
}

// newClient returns a client of the portal with fast retries; mod adjusts
// the config.
func newClient(t testing.TB, srv *hubspottest.Server, p *hubspottest.Portal, mod func(*hubspot.Config)) *hubspot.Client {
	t.Helper()
	cfg := hubspot.Config{
		BaseURL:        srv.URL,
		PortalID:       p.ID(),
		Auth:           hubspot.BearerToken(p.Token()),
		RetryBaseDelay: 5 * time.Millisecond,
		RetryMaxDelay:  50 * time.Millisecond,
		Logger:         quietLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := hubspot.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// recorder is an http.RoundTripper that records the requests it forwards.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []string // "METHOD escaped-path"
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.EscapedPath())
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}

func totalRequests(s hubspottest.Stats) int {
	n := 0
	for _, v := range s.Requests {
		n += v
	}
	return n
}
