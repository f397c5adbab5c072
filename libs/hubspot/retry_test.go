package hubspot_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
)

// testRedis returns a client of the real Redis (REDIS_URL or 127.0.0.1:6379);
// outside CI a miniredis stands in when none answers, under CI that fails.
func testRedis(t testing.TB) *redis.Client {
	t.Helper()
	addr := "127.0.0.1:6379"
	if u := os.Getenv("REDIS_URL"); u != "" {
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Fatalf("REDIS_URL: %v", err)
		}
		addr = opt.Addr
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis at %s under CI: %v", addr, err)
		}
		t.Logf("no Redis at %s (%v): using miniredis", addr, err)
		c = redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func uniquePrefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "test:hubspot:" + strings.ReplaceAll(t.Name(), "/", "-") + ":" + hex.EncodeToString(b[:])
}

func newGovernor(t testing.TB, rdb *redis.Client, prefix string, portalID int64, lim quota.Limits) *quota.Governor {
	t.Helper()
	g, err := quota.New(quota.Config{Redis: rdb, KeyPrefix: prefix, Portals: map[int64]quota.Limits{portalID: lim}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestRetry_TransientStatuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
	}{{500}, {502}, {503}, {504}, {423}}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			t.Parallel()
			srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{})
			c := newClient(t, srv, p, nil)
			ids := p.SeedCompanies(map[string]string{"name": "x"})
			p.Faults(hubspottest.Faults{NextErrors: 2, ErrorStatus: tc.status})
			res, err := c.BatchUpdate(testCtx(t), hubspot.Companies, []hubspot.BatchInput{{ID: ids[0], Properties: map[string]string{"city": "Graz"}}})
			if err != nil {
				t.Fatalf("after 2 injected %d: %v", tc.status, err)
			}
			if len(res.Results) != 1 {
				t.Fatalf("results = %+v", res.Results)
			}
			st := p.Stats()
			if st.FaultsInjected != 2 || st.Statuses[tc.status] != 2 || st.Statuses[http.StatusOK] != 1 {
				t.Fatalf("stats = faults %d statuses %v", st.FaultsInjected, st.Statuses)
			}
		})
	}
}

func TestRetry_BoundedAndNotForValidation(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, func(cfg *hubspot.Config) { cfg.MaxRetries = 3 })
	ctx := testCtx(t)
	ids := p.SeedCompanies(map[string]string{"name": "x"})

	p.Faults(hubspottest.Faults{ErrorRate: 1, ErrorStatus: 503})
	_, err := c.Get(ctx, hubspot.Companies, ids[0], hubspot.GetOptions{})
	var he *hubspot.Error
	if !errors.As(err, &he) || he.StatusCode != 503 || he.Attempts != 4 || he.RetryAfter <= 0 {
		t.Fatalf("err = %#v, want a 503 after 4 attempts with a RetryAfter hint", err)
	}
	if n := p.Stats().Statuses[503]; n != 4 {
		t.Fatalf("%d requests, want 4 (1 + MaxRetries)", n)
	}

	p.Faults(hubspottest.Faults{})
	p.ResetStats()
	_, err = c.Update(ctx, hubspot.Companies, ids[0], "", map[string]string{"no_such_prop": "1"})
	if !hubspot.IsValidation(err) {
		t.Fatalf("err = %v, want validation", err)
	}
	if n := totalRequests(p.Stats()); n != 1 {
		t.Fatalf("a validation error was sent %d times", n)
	}

	// Creates are not retried after a 5xx unless RetryNonIdempotent is set.
	p.Faults(hubspottest.Faults{NextErrors: 1, Method: http.MethodPost})
	p.ResetStats()
	if _, err := c.Create(ctx, hubspot.Companies, hubspot.CreateInput{Properties: map[string]string{"name": "once"}}); !errors.As(err, &he) || he.StatusCode != 500 {
		t.Fatalf("create after a 500: %v, want the 500", err)
	}
	if n := totalRequests(p.Stats()); n != 1 {
		t.Fatalf("a create was sent %d times after a 500", n)
	}
	unsafe := newClient(t, srv, p, func(cfg *hubspot.Config) { cfg.RetryNonIdempotent = true })
	p.Faults(hubspottest.Faults{NextErrors: 1, Method: http.MethodPost})
	if _, err := unsafe.Create(ctx, hubspot.Companies, hubspot.CreateInput{Properties: map[string]string{"name": "twice"}}); err != nil {
		t.Fatalf("create with RetryNonIdempotent: %v", err)
	}

	// A retry that cannot finish before the deadline returns the real error.
	slow := newClient(t, srv, p, func(cfg *hubspot.Config) { cfg.RetryBaseDelay, cfg.RetryMaxDelay = time.Minute, time.Minute })
	p.Faults(hubspottest.Faults{ErrorRate: 1, ErrorStatus: 502})
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := slow.Get(short, hubspot.Companies, ids[0], hubspot.GetOptions{}); !errors.As(err, &he) || he.StatusCode != 502 {
		t.Fatalf("err = %v, want the 502 rather than a context error", err)
	}
}

func TestRetry_NetworkErrors(t *testing.T) {
	t.Parallel()
	// The sandbox cannot drop connections, so a tiny server does: the first
	// request of each path has its connection closed without a response.
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			_ = conn.Close()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"1","properties":{"name":"x"},"createdAt":"2026-01-01T00:00:00.000Z","updatedAt":"2026-01-01T00:00:00.000Z","archived":false}`))
	}))
	t.Cleanup(ts.Close)
	c, err := hubspot.New(hubspot.Config{BaseURL: ts.URL, Auth: hubspot.BearerToken("t"), RetryBaseDelay: time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.Get(testCtx(t), hubspot.Companies, "1", hubspot.GetOptions{})
	if err != nil || o.ID != "1" || hits.Load() != 2 {
		t.Fatalf("Get after a dropped connection: %+v, %v (hits %d)", o, err, hits.Load())
	}
	// A refused connection (nothing listening) is retried, then reported.
	ts2 := httptest.NewServer(http.NotFoundHandler())
	dead := ts2.URL
	ts2.Close()
	c2, _ := hubspot.New(hubspot.Config{BaseURL: dead, Auth: hubspot.BearerToken("t"), MaxRetries: 2, RetryBaseDelay: time.Millisecond, Logger: quietLogger()})
	if _, err := c2.Get(testCtx(t), hubspot.Companies, "1", hubspot.GetOptions{}); err == nil || !strings.Contains(err.Error(), "objects.get") {
		t.Fatalf("dead server: %v", err)
	}
}

func TestRateLimit_TenSecondlyWaitsOutTheWindow(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{Burst: 4, Interval: time.Second})
	c := newClient(t, srv, p, func(cfg *hubspot.Config) { cfg.MaxRetries = 10 })
	ctx := testCtx(t)
	ids := p.SeedCompanies(map[string]string{"name": "x"})
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for range 12 {
		wg.Go(func() {
			_, err := c.Get(ctx, hubspot.Companies, ids[0], hubspot.GetOptions{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("call failed despite retries: %v", err)
		}
	}
	st := p.Stats()
	if st.RateLimited[hubspottest.PolicyTenSecondly] == 0 {
		t.Fatalf("expected the burst of 12 to hit TEN_SECONDLY_ROLLING 429s; stats %v", st.RateLimited)
	}
	if st.Statuses[200] != 12 {
		t.Fatalf("statuses %v, want 12 successes", st.Statuses)
	}
	// Without retries the 429 comes back with the window as RetryAfter.
	once := newClient(t, srv, p, func(cfg *hubspot.Config) { cfg.MaxRetries = -1 })
	p.Faults(hubspottest.Faults{Next429: 1})
	_, err := once.Get(ctx, hubspot.Companies, ids[0], hubspot.GetOptions{})
	var he *hubspot.Error
	if !errors.As(err, &he) || he.PolicyName != hubspot.PolicyTenSecondlyRolling || he.RetryAfter != time.Second {
		t.Fatalf("429 without retries: %#v, want TEN_SECONDLY_ROLLING with RetryAfter 1s", err)
	}
}

func TestRateLimit_SearchSecondly(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{SearchPerSecond: 2})
	c := newClient(t, srv, p, nil)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 6 {
		wg.Go(func() {
			if _, err := c.Search(ctx, hubspot.Companies, hubspot.SearchRequest{}); err != nil {
				t.Errorf("search: %v", err)
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	st := p.Stats()
	if failed.Load() == 0 && (st.RateLimited[hubspottest.PolicySecondly] == 0 || st.SearchCalls != 6) {
		t.Fatalf("want SECONDLY 429s and 6 searches through; got %v, %d searches", st.RateLimited, st.SearchCalls)
	}
}

func TestRateLimit_DailyStopsBulkWork(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{Daily: 3})
	ctx := testCtx(t)
	ids := p.SeedCompanies(map[string]string{"name": "x"})

	// A client without a governor spends the day's 3 calls; the 4th is a
	// DAILY 429, returned at once.
	plain := newClient(t, srv, p, nil)
	for i := range 3 {
		if _, err := plain.Get(ctx, hubspot.Companies, ids[0], hubspot.GetOptions{}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err := plain.Get(ctx, hubspot.Companies, ids[0], hubspot.GetOptions{})
	var he *hubspot.Error
	if !errors.Is(err, hubspot.ErrDailyLimit) || !errors.As(err, &he) || he.PolicyName != hubspot.PolicyDaily || !hubspot.IsRateLimited(err) {
		t.Fatalf("4th call: %v, want a DAILY 429 wrapping ErrDailyLimit", err)
	}
	if he.RetryAfter <= 0 || he.Attempts != 1 {
		t.Fatalf("DAILY error: RetryAfter %v attempts %d, want the time to reset and no retry", he.RetryAfter, he.Attempts)
	}

	// A governed replica that knew nothing sends once, gets the DAILY 429,
	// and from then on every replica refuses bulk work without a request.
	rdb := testRedis(t)
	prefix := uniquePrefix(t)
	lim := quota.Limits{Burst: 100, Interval: 10 * time.Second, Daily: 1_000_000, DailyReserve: 1000}
	governed := newClient(t, srv, p, func(cfg *hubspot.Config) { cfg.Governor = newGovernor(t, rdb, prefix, p.ID(), lim) })
	if _, err := governed.Get(hubspot.WithClass(ctx, quota.Hourly), hubspot.Companies, ids[0], hubspot.GetOptions{}); !errors.As(err, &he) || he.PolicyName != hubspot.PolicyDaily {
		t.Fatalf("governed call: %v, want HubSpot's DAILY 429", err)
	}
	other := newClient(t, srv, p, func(cfg *hubspot.Config) { cfg.Governor = newGovernor(t, rdb, prefix, p.ID(), lim) })
	p.ResetStats()
	for _, class := range []quota.Class{quota.Bulk, quota.Hourly} {
		_, err = other.Get(hubspot.WithClass(ctx, class), hubspot.Companies, ids[0], hubspot.GetOptions{})
		var dle *quota.DailyLimitError
		if !errors.As(err, &dle) || !errors.Is(err, hubspot.ErrDailyLimit) || !dle.Until.After(time.Now()) {
			t.Fatalf("%s call after DAILY: %v, want *quota.DailyLimitError with the reset time", class, err)
		}
	}
	if n := totalRequests(p.Stats()); n != 0 {
		t.Fatalf("refused bulk calls still sent %d requests", n)
	}
}

func TestRateLimit_429ThrottlesEveryReplica(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{Interval: 400 * time.Millisecond})
	rdb := testRedis(t)
	prefix := uniquePrefix(t)
	lim := quota.Limits{Burst: 100, Interval: 400 * time.Millisecond}
	gov := newGovernor(t, rdb, prefix, p.ID(), lim)
	c := newClient(t, srv, p, func(cfg *hubspot.Config) { cfg.Governor = gov })
	ids := p.SeedCompanies(map[string]string{"name": "x"})

	p.Faults(hubspottest.Faults{Next429: 1})
	if _, err := c.Get(testCtx(t), hubspot.Companies, ids[0], hubspot.GetOptions{}); err != nil {
		t.Fatalf("Get after one 429: %v", err)
	}
	if st := p.Stats(); st.RateLimited[hubspottest.PolicyTenSecondly] != 1 || st.Statuses[200] != 1 {
		t.Fatalf("stats %v %v", st.RateLimited, st.Statuses)
	}
	// The 429 empties the shared bucket for the window: a fresh replica must
	// wait too. (A 1-minute window so that the check is not a race.)
	slow, err := srv.CreatePortal(hubspottest.PortalOptions{Interval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	slowLim := quota.Limits{Burst: 100, Interval: time.Minute}
	slowPrefix := uniquePrefix(t)
	once := newClient(t, srv, slow, func(cfg *hubspot.Config) {
		cfg.Governor = newGovernor(t, rdb, slowPrefix, slow.ID(), slowLim)
		cfg.MaxRetries = -1
	})
	slow.Faults(hubspottest.Faults{Next429: 1})
	var he *hubspot.Error
	if _, err := once.Get(hubspot.WithClass(testCtx(t), quota.Interactive), hubspot.Companies, "1", hubspot.GetOptions{}); !errors.As(err, &he) || he.RetryAfter != time.Minute {
		t.Fatalf("429 without retries: %v, want RetryAfter 1m", err)
	}
	other := newGovernor(t, rdb, slowPrefix, slow.ID(), slowLim)
	wait, err := other.Allow(context.Background(), slow.ID(), quota.Interactive, quota.Normal)
	if err != nil || wait < 30*time.Second {
		t.Fatalf("other replica right after a 429: wait %v err %v, want about a minute", wait, err)
	}
}
