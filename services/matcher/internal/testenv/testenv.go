// Package testenv builds what the matcher's tests share: a HubSpot sandbox with governed
// clients, and portal ids that are unique on a shared Redis and cleaned up after a test.
// It is imported by tests only.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/redisx"
	"github.com/signalbridge/signalbridge/libs/redisx/redistest"
)

// PortalID returns a random numeric portal id and deletes its sb:{id}:* keys from rdb
// when the test ends (the mirror's keys are per portal; tests share one Redis).
func PortalID(t testing.TB, rdb *redis.Client) int64 {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := 900_000_000_000 + int64(binary.BigEndian.Uint64(b[:])%99_000_000_000)
	if rdb != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := redistest.DeleteKeys(ctx, rdb, redisx.Key(strconv.FormatInt(id, 10), "*")); err != nil {
				t.Errorf("testenv: delete keys of portal %d: %v", id, err)
			}
		})
	}
	return id
}

// Limits are generous sandbox and governor limits, so tests are not paced by HubSpot's
// real ones (benchmarks and rate-limit tests set their own).
var Limits = quota.Limits{Burst: 5000, Interval: 10 * time.Second, SearchPerSecond: 200}

// HubSpot is a sandbox with one quota governor shared by every client built on it.
type HubSpot struct {
	Server *hubspottest.Server
	Gov    *quota.Governor

	mu      sync.Mutex
	clients map[string]*hubspot.Client
	byID    map[string]*hubspottest.Portal
	now     func() time.Time
}

// NewHubSpot starts a sandbox (closed when the test ends) and a local governor.
func NewHubSpot(t testing.TB, opts hubspottest.Options) *HubSpot {
	t.Helper()
	gov, err := quota.New(quota.Config{Default: Limits, ExpectedReplicas: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("testenv: governor: %v", err)
	}
	now := opts.Clock
	if now == nil {
		now = time.Now
	}
	return &HubSpot{Server: hubspottest.NewTest(t, opts), Gov: gov, clients: map[string]*hubspot.Client{},
		byID: map[string]*hubspottest.Portal{}, now: now}
}

// AddPortal adds a sandbox portal with the given id and Limits-sized rate limits.
func (h *HubSpot) AddPortal(t testing.TB, id int64) *hubspottest.Portal {
	t.Helper()
	p, err := h.Server.CreatePortal(hubspottest.PortalOptions{
		ID: id, Tier: hubspottest.TierEnterprise, Burst: Limits.Burst, SearchPerSecond: Limits.SearchPerSecond,
	})
	if err != nil {
		t.Fatalf("testenv: add portal %d: %v", id, err)
	}
	h.mu.Lock()
	h.byID[strconv.FormatInt(id, 10)] = p
	h.mu.Unlock()
	return p
}

// Client returns the governed client of a sandbox portal added with AddPortal.
func (h *HubSpot) Client(portalID string) (*hubspot.Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.clients[portalID]; ok {
		return c, nil
	}
	p, ok := h.byID[portalID]
	if !ok {
		return nil, fmt.Errorf("testenv: no sandbox portal %q", portalID)
	}
	c, err := hubspot.New(hubspot.Config{
		BaseURL: h.Server.URL, PortalID: p.ID(), Auth: hubspot.BearerToken(p.Token()), Governor: h.Gov,
		RetryBaseDelay: 20 * time.Millisecond, RetryMaxDelay: 500 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), Now: h.now,
	})
	if err != nil {
		return nil, err
	}
	h.clients[portalID] = c
	return c, nil
}

// MustClient is Client for a test.
func (h *HubSpot) MustClient(t testing.TB, portalID string) *hubspot.Client {
	t.Helper()
	c, err := h.Client(portalID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Clock is a settable clock for the sandbox and the code under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ProxiedRedis returns a client of the shared test Redis that goes through a Proxy the
// test can cut and restore, the proxy, and a direct client (for setup and checks).
func ProxiedRedis(t testing.TB) (proxied *redis.Client, proxy *Proxy, direct *redis.Client) {
	t.Helper()
	url := redistest.URL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	proxy = NewProxy(t, opts.Addr)
	c, err := redisx.New(t.Context(), redisx.Config{
		URL: "redis://" + proxy.Addr() + "/" + strconv.Itoa(opts.DB), DialTimeout: 300 * time.Millisecond,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("testenv: redis through proxy: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, proxy, redistest.TestClient(t)
}
