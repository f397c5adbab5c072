package quota_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/telemetry/telemetrytest"
)

const portal = int64(4242)

// slow is a budget that does not refill during a test: 100 requests per hour
// gives a shared burst of 8 (Interactive 8, Webhook 6, Hourly 4, Bulk 2).
var slow = quota.Limits{Burst: 100, Interval: time.Hour, SearchPerSecond: 5}

func newGovernor(t *testing.T, addr, prefix string, mod func(*quota.Config)) *quota.Governor {
	t.Helper()
	cfg := quota.Config{
		Redis:     newRedis(t, addr),
		KeyPrefix: prefix,
		Default:   slow,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	g, err := quota.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// admitted counts how many immediate grants a class gets, spread round-robin
// over the replicas, until the first refusal.
func admitted(t *testing.T, replicas []*quota.Governor, class quota.Class, kind quota.Kind) int {
	t.Helper()
	n := 0
	for i := 0; ; i++ {
		wait, err := replicas[i%len(replicas)].Allow(context.Background(), portal, class, kind)
		if err != nil {
			t.Fatalf("Allow(%s): %v", class, err)
		}
		if wait > 0 {
			return n
		}
		n++
		if n > 1000 {
			t.Fatalf("Allow(%s) never refused", class)
		}
	}
}

func TestGovernor_ClassReservesSharedAcrossReplicas(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	replicas := make([]*quota.Governor, 4)
	for i := range replicas {
		replicas[i] = newGovernor(t, addr, prefix, nil)
	}
	// Bulk saturates first, then each more important class still finds the
	// tokens reserved for it: 2 (bulk) + 2 (hourly) + 2 (webhook) + 2 (interactive) = burst 8.
	steps := []struct {
		class quota.Class
		want  int
	}{
		{quota.Bulk, 2},
		{quota.Bulk, 0},
		{quota.Hourly, 2},
		{quota.Webhook, 2},
		{quota.Hourly, 0},
		{quota.Interactive, 2},
		{quota.Interactive, 0},
		{quota.Webhook, 0},
	}
	for i, s := range steps {
		if got := admitted(t, replicas, s.class, quota.Normal); got != s.want {
			t.Fatalf("step %d: %s admitted %d, want %d", i, s.class, got, s.want)
		}
	}
	// The search bucket is separate (5/s: burst 2, bulk 1).
	if got := admitted(t, replicas, quota.Bulk, quota.Search); got != 1 {
		t.Fatalf("bulk search admitted %d, want 1", got)
	}
	if got := admitted(t, replicas, quota.Interactive, quota.Search); got != 1 {
		t.Fatalf("interactive search after bulk admitted %d, want 1", got)
	}
}

func TestGovernor_WaitHonoursContextAndRefill(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	g := newGovernor(t, addr, uniquePrefix(t), func(c *quota.Config) {
		// 20 per 200 ms refills quickly: Wait must succeed after the burst.
		c.Default = quota.Limits{Burst: 20, Interval: 200 * time.Millisecond}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 30 {
		if err := g.Wait(ctx, portal, quota.Bulk, quota.Normal); err != nil {
			t.Fatalf("wait %d: %v", i, err)
		}
	}
	// On a bucket that does not refill, Wait returns ctx's error.
	g2 := newGovernor(t, addr, uniquePrefix(t), nil)
	for range 2 {
		if err := g2.Wait(ctx, portal, quota.Bulk, quota.Normal); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if err := g2.Wait(short, portal, quota.Bulk, quota.Normal); !isCtxErr(err) {
		t.Fatalf("Wait on empty bucket = %v, want context deadline", err)
	}
}

func TestGovernor_ConcurrentWaitersNeverExceedBurst(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	replicas := make([]*quota.Governor, 4)
	for i := range replicas {
		replicas[i] = newGovernor(t, addr, prefix, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var granted atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			g := replicas[i%len(replicas)]
			class := []quota.Class{quota.Interactive, quota.Webhook, quota.Hourly, quota.Bulk}[i%4]
			for g.Wait(ctx, portal, class, quota.Normal) == nil {
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	// The hour-long interval refills nothing meaningful: exactly the burst.
	if got := granted.Load(); got != 8 {
		t.Fatalf("granted %d under contention, want the burst of 8", got)
	}
}

func TestGovernor_DailyQuotaAndReserve(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	lim := quota.Limits{Burst: 1000, Interval: time.Second, Daily: 10, DailyReserve: 4}
	a := newGovernor(t, addr, prefix, func(c *quota.Config) { c.Default = lim })
	b := newGovernor(t, addr, prefix, func(c *quota.Config) { c.Default = lim })
	ctx := context.Background()
	for i := range 6 {
		if err := []*quota.Governor{a, b}[i%2].Wait(ctx, portal, quota.Bulk, quota.Normal); err != nil {
			t.Fatalf("bulk call %d: %v", i, err)
		}
	}
	err := a.Wait(ctx, portal, quota.Hourly, quota.Normal)
	var dle *quota.DailyLimitError
	if !errors.Is(err, quota.ErrDailyLimit) || !errors.As(err, &dle) {
		t.Fatalf("hourly call past Daily-DailyReserve = %v, want ErrDailyLimit", err)
	}
	if dle.PortalID != portal || !dle.Until.After(time.Now()) {
		t.Fatalf("DailyLimitError = %+v, want portal %d and a future reset", dle, portal)
	}
	for i := range 4 { // the reserve: interactive and webhook only
		class := []quota.Class{quota.Interactive, quota.Webhook}[i%2]
		if err := b.Wait(ctx, portal, class, quota.Search); err != nil {
			t.Fatalf("%s call %d in the reserve: %v", class, i, err)
		}
	}
	if err := a.Wait(ctx, portal, quota.Interactive, quota.Normal); !errors.Is(err, quota.ErrDailyLimit) {
		t.Fatalf("interactive past Daily = %v, want ErrDailyLimit", err)
	}
}

func TestGovernor_DailyExhaustedStopsBulkOnEveryReplica(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	lim := quota.Limits{Burst: 1000, Interval: time.Second, Daily: 1_000_000, DailyReserve: 1000}
	a := newGovernor(t, addr, prefix, func(c *quota.Config) { c.Default = lim })
	b := newGovernor(t, addr, prefix, func(c *quota.Config) { c.Default = lim })
	until := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	a.DailyExhausted(portal, until)

	ctx := context.Background()
	for _, class := range []quota.Class{quota.Bulk, quota.Hourly} {
		err := b.Wait(ctx, portal, class, quota.Normal)
		var dle *quota.DailyLimitError
		if !errors.As(err, &dle) || !errors.Is(err, quota.ErrDailyLimit) {
			t.Fatalf("%s on the other replica = %v, want *DailyLimitError", class, err)
		}
		if !dle.Until.Equal(until) || dle.Class != class {
			t.Fatalf("DailyLimitError = %+v, want until %v class %s", dle, until, class)
		}
	}
	for _, class := range []quota.Class{quota.Interactive, quota.Webhook} {
		if err := b.Wait(ctx, portal, class, quota.Normal); err != nil {
			t.Fatalf("%s after DailyExhausted: %v", class, err)
		}
	}
	// A portal that is not exhausted is unaffected.
	if err := b.Wait(ctx, portal+1, quota.Bulk, quota.Normal); err != nil {
		t.Fatalf("other portal: %v", err)
	}
}

func TestGovernor_ObserveCorrectsFromHeaders(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	ctx := context.Background()

	t.Run("remaining pushes the shared bucket", func(t *testing.T) {
		t.Parallel()
		prefix := uniquePrefix(t)
		a := newGovernor(t, addr, prefix, nil)
		b := newGovernor(t, addr, prefix, nil)
		h := http.Header{}
		h.Set("X-HubSpot-RateLimit-Remaining", "1")
		a.Observe(portal, h)
		if got := admitted(t, []*quota.Governor{b}, quota.Interactive, quota.Normal); got != 1 {
			t.Fatalf("interactive admitted %d after Remaining=1, want 1", got)
		}
	})
	t.Run("max and interval replace the limits", func(t *testing.T) {
		t.Parallel()
		g := newGovernor(t, addr, uniquePrefix(t), nil)
		h := http.Header{}
		h.Set("X-HubSpot-RateLimit-Max", "190")
		h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
		h.Set("X-HubSpot-RateLimit-Remaining", "189")
		g.Observe(portal, h)
		l, err := g.Limits(portal)
		if err != nil {
			t.Fatal(err)
		}
		if l.Burst != 190 || l.Interval != 10*time.Second {
			t.Fatalf("limits after Observe = %+v, want 190 per 10s", l)
		}
	})
	t.Run("daily remaining raises the daily count", func(t *testing.T) {
		t.Parallel()
		g := newGovernor(t, addr, uniquePrefix(t), func(c *quota.Config) {
			c.Default = quota.Limits{Burst: 1000, Interval: time.Second, Daily: 1000, DailyReserve: 100}
		})
		h := http.Header{}
		h.Set("X-HubSpot-RateLimit-Daily", "1000")
		h.Set("X-HubSpot-RateLimit-Daily-Remaining", "50")
		g.Observe(portal, h)
		if err := g.Wait(ctx, portal, quota.Bulk, quota.Normal); !errors.Is(err, quota.ErrDailyLimit) {
			t.Fatalf("bulk with 50 left of a 100 reserve = %v, want ErrDailyLimit", err)
		}
		if err := g.Wait(ctx, portal, quota.Interactive, quota.Normal); err != nil {
			t.Fatalf("interactive within the reserve: %v", err)
		}
	})
	t.Run("malformed headers are ignored", func(t *testing.T) {
		t.Parallel()
		g := newGovernor(t, addr, uniquePrefix(t), nil)
		h := http.Header{}
		h.Set("X-HubSpot-RateLimit-Max", "lots")
		h.Set("X-HubSpot-RateLimit-Remaining", "-")
		g.Observe(portal, h)
		if l, _ := g.Limits(portal); l.Burst != slow.Burst {
			t.Fatalf("Burst = %d after malformed headers, want %d", l.Burst, slow.Burst)
		}
		if got := admitted(t, []*quota.Governor{g}, quota.Interactive, quota.Normal); got != 8 {
			t.Fatalf("admitted %d, want the untouched burst of 8", got)
		}
	})
}

func TestGovernor_ThrottleClosesTheWindowForAllReplicas(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	fast := quota.Limits{Burst: 1000, Interval: time.Second}
	a := newGovernor(t, addr, prefix, func(c *quota.Config) { c.Default = fast })
	b := newGovernor(t, addr, prefix, func(c *quota.Config) { c.Default = fast })
	a.Throttle(portal, quota.Normal, 30*time.Second)
	wait, err := b.Allow(context.Background(), portal, quota.Interactive, quota.Normal)
	if err != nil {
		t.Fatal(err)
	}
	if wait < 25*time.Second || wait > 31*time.Second {
		t.Fatalf("Allow after Throttle(30s) says wait %v, want about 30s", wait)
	}
	// Search is a different bucket.
	if wait, err := b.Allow(context.Background(), portal, quota.Interactive, quota.Search); err != nil || wait != 0 {
		t.Fatalf("search after a normal throttle: wait %v err %v, want admitted", wait, err)
	}
}

func TestGovernor_FallsBackToLocalShareAndRecovers(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	px := newProxy(t, addr)
	clk := newClock()
	reader := sdkmetric.NewManualReader()
	g := newGovernor(t, px.addr, uniquePrefix(t), func(c *quota.Config) {
		c.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		c.Default = quota.Limits{Burst: 400, Interval: time.Hour, Daily: 1000, DailyReserve: 100}
		c.ExpectedReplicas = 4
		c.RetryRedisAfter = time.Minute
		c.RedisTimeout = 200 * time.Millisecond
		c.Now = clk.Now
	})
	ctx := context.Background()
	if err := g.Wait(ctx, portal, quota.Interactive, quota.Normal); err != nil {
		t.Fatalf("with Redis up: %v", err)
	}
	if g.Degraded() {
		t.Fatal("Degraded with Redis up")
	}
	if deg, spent := quotaGauges(t, reader); deg != 0 || spent != 0 {
		t.Fatalf("degraded and daily_exhausted gauges with Redis up = %d and %d, want 0 and 0", deg, spent)
	}

	px.Stop()
	// Shared burst for 400/h is 12; the local share is 12/4 = 3 for
	// interactive and 1 for bulk. Nothing errors, nothing blocks on Redis.
	if got := admitted(t, []*quota.Governor{g}, quota.Bulk, quota.Normal); got != 1 {
		t.Fatalf("bulk admitted %d on the local share, want 1", got)
	}
	if !g.Degraded() {
		t.Fatal("not Degraded after Redis failed")
	}
	if got := admitted(t, []*quota.Governor{g}, quota.Interactive, quota.Normal); got != 2 {
		t.Fatalf("interactive admitted %d on the local share, want 2", got)
	}
	g.DailyExhausted(portal, clk.Now().Add(time.Hour)) // must not fail without Redis
	if err := g.Wait(ctx, portal, quota.Bulk, quota.Normal); !errors.Is(err, quota.ErrDailyLimit) {
		t.Fatalf("bulk after local DailyExhausted = %v, want ErrDailyLimit", err)
	}
	if deg, spent := quotaGauges(t, reader); deg != 1 || spent != 1 {
		t.Fatalf("degraded and daily_exhausted gauges with Redis down and the daily quota spent = %d and %d, want 1 and 1", deg, spent)
	}

	px.Start()
	clk.Advance(2 * time.Minute) // past RetryRedisAfter: the next call probes Redis
	if wait, err := g.Allow(ctx, portal, quota.Interactive, quota.Normal); err != nil || wait != 0 {
		t.Fatalf("after Redis returned: wait %v err %v, want admitted from the shared bucket", wait, err)
	}
	if g.Degraded() {
		t.Fatal("still Degraded after Redis returned")
	}
	if deg, _ := quotaGauges(t, reader); deg != 0 {
		t.Fatalf("degraded gauge after Redis returned = %d, want 0", deg)
	}
}

// quotaGauges reads the governor's degraded and daily_exhausted gauges.
func quotaGauges(t *testing.T, reader sdkmetric.Reader) (degraded, dailyExhausted int64) {
	t.Helper()
	return telemetrytest.Int64(t, reader, "signalbridge.hubspot.quota.degraded"),
		telemetrytest.Int64(t, reader, "signalbridge.hubspot.quota.daily_exhausted")
}

func TestGovernor_Validation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  quota.Config
	}{
		{"negative burst", quota.Config{Default: quota.Limits{Burst: -1}}},
		{"reserve above daily", quota.Config{Default: quota.Limits{Burst: 10, Daily: 5, DailyReserve: 5}}},
		{"bad portal limits", quota.Config{Portals: map[int64]quota.Limits{7: {}}}},
		{"bad class reserve", quota.Config{Default: slow, ClassReserve: map[quota.Class]float64{quota.Bulk: 1}}},
		{"unknown class", quota.Config{Default: slow, ClassReserve: map[quota.Class]float64{9: 0.1}}},
		{"headroom", quota.Config{Default: slow, Headroom: 0.7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := quota.New(tc.cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}

	g, err := quota.New(quota.Config{Portals: map[int64]quota.Limits{portal: slow}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := g.Wait(ctx, portal, 0, quota.Normal); err == nil {
		t.Error("Wait accepted class 0")
	}
	if err := g.Wait(ctx, portal, quota.Bulk, 7); err == nil {
		t.Error("Wait accepted kind 7")
	}
	if err := g.Wait(ctx, portal+1, quota.Bulk, quota.Normal); err == nil {
		t.Error("Wait accepted a portal without limits and no Default")
	}
	if err := g.Wait(ctx, portal, quota.Bulk, quota.Normal); err != nil {
		t.Errorf("Wait without Redis: %v", err)
	}
}

func TestTierLimits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		tier         quota.Tier
		burst, daily int
	}{
		{quota.TierFree, 100, 250_000},
		{quota.TierStarter, 100, 250_000},
		{quota.TierProfessional, 190, 650_000},
		{quota.TierEnterprise, 190, 1_000_000},
		{quota.TierAPIAddOn, 250, 2_000_000},
		{quota.TierOAuthApp, 110, 0},
	}
	for _, tc := range cases {
		l, err := quota.TierLimits(tc.tier)
		if err != nil {
			t.Fatalf("%s: %v", tc.tier, err)
		}
		if l.Burst != tc.burst || l.Daily != tc.daily || l.Interval != 10*time.Second || l.SearchPerSecond != 5 {
			t.Errorf("%s = %+v, want burst %d daily %d per 10s, search 5/s", tc.tier, l, tc.burst, tc.daily)
		}
		if err := l.Validate(); err != nil {
			t.Errorf("%s: %v", tc.tier, err)
		}
	}
	if _, err := quota.TierLimits("platinum"); err == nil {
		t.Error("unknown tier accepted")
	}
}
