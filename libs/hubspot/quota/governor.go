package quota

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
)

// ErrDailyLimit is wrapped by every error that reports an exhausted daily
// quota. Match it with errors.Is; errors.As with *DailyLimitError gives the
// portal and the reset time.
var ErrDailyLimit = errors.New("hubspot daily API limit reached")

// DailyLimitError says that a portal's daily quota is spent for a class of calls.
type DailyLimitError struct {
	PortalID int64
	Class    Class
	// Until is when the daily quota resets (midnight in the portal's zone).
	Until time.Time
}

// Error implements error.
func (e *DailyLimitError) Error() string {
	return fmt.Sprintf("portal %d: %s calls stopped until %s: %v",
		e.PortalID, e.Class, e.Until.Format(time.RFC3339), ErrDailyLimit)
}

// Unwrap returns ErrDailyLimit.
func (e *DailyLimitError) Unwrap() error { return ErrDailyLimit }

// Config configures a Governor. Only Default (or Portals) is required.
type Config struct {
	// Redis holds the shared buckets. Nil runs the governor on local limiters
	// only (one replica, or tests).
	Redis redis.UniversalClient
	// KeyPrefix namespaces the Redis keys; default "signalbridge:hubspot:quota".
	KeyPrefix string
	// Default applies to portals missing from Portals.
	Default Limits
	// Portals overrides Default per portal id.
	Portals map[int64]Limits
	// ExpectedReplicas is how many replicas share a portal; each one takes
	// 1/ExpectedReplicas of the budget while Redis is unreachable. Default 4.
	ExpectedReplicas int
	// BurstFraction is the GCRA burst as a fraction of the limit; default 0.03.
	BurstFraction float64
	// MinBurst is the smallest burst of the per-interval bucket; default 8.
	MinBurst int
	// Headroom is the fraction of the limit never used, to absorb network
	// jitter between the grant and HubSpot's count; default 0.01.
	Headroom float64
	// ClassReserve is, per class, the fraction of the burst that the class
	// must leave in the bucket for more important classes. Missing classes
	// take the defaults: Interactive 0, Webhook 0.25, Hourly 0.5, Bulk 0.75.
	ClassReserve map[Class]float64
	// RedisTimeout bounds each Redis round trip; default 250 ms.
	RedisTimeout time.Duration
	// RetryRedisAfter is how long a replica stays on its local share after a
	// Redis failure before it tries Redis again; default 1 s.
	RetryRedisAfter time.Duration
	// Logger receives fallback and recovery transitions; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MeterProvider receives signalbridge.hubspot.quota.degraded (1 while
	// this replica runs on its local share because Redis failed) and
	// signalbridge.hubspot.quota.daily_exhausted (portals whose bulk work is
	// stopped until the daily reset); default: none recorded.
	MeterProvider metric.MeterProvider
}

// Governor admits HubSpot calls per portal. It is safe for concurrent use.
type Governor struct {
	rdb     redis.UniversalClient
	limiter *redis_rate.Limiter
	prefix  string
	shaping shaping
	cfg     Config
	log     *slog.Logger
	now     func() time.Time

	mu          sync.Mutex
	limits      map[int64]Limits
	gates       map[gateKey]chan struct{}
	local       map[localKey]*localBucket
	localDaily  map[dailyKey]int
	exhausted   map[int64]time.Time // DailyExhausted, kept locally too
	redisDownAt time.Time           // zero while Redis is healthy
}

type gateKey struct {
	portal int64
	kind   Kind
	class  Class
}

// New validates cfg and returns a Governor.
func New(cfg Config) (*Governor, error) {
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "signalbridge:hubspot:quota"
	}
	if cfg.ExpectedReplicas <= 0 {
		cfg.ExpectedReplicas = 4
	}
	if cfg.BurstFraction <= 0 {
		cfg.BurstFraction = 0.03
	}
	if cfg.MinBurst <= 0 {
		cfg.MinBurst = 8
	}
	if cfg.Headroom < 0 || cfg.Headroom >= 0.5 {
		return nil, fmt.Errorf("quota: Headroom must be in [0, 0.5), got %v", cfg.Headroom)
	}
	if cfg.Headroom == 0 {
		cfg.Headroom = 0.01
	}
	if cfg.BurstFraction >= 0.5 {
		return nil, fmt.Errorf("quota: BurstFraction must be < 0.5, got %v", cfg.BurstFraction)
	}
	if cfg.RedisTimeout <= 0 {
		cfg.RedisTimeout = 250 * time.Millisecond
	}
	if cfg.RetryRedisAfter <= 0 {
		cfg.RetryRedisAfter = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	reserve := map[Class]float64{Interactive: 0, Webhook: 0.25, Hourly: 0.5, Bulk: 0.75}
	for c, f := range cfg.ClassReserve {
		if !c.Valid() {
			return nil, fmt.Errorf("quota: ClassReserve: unknown class %d", int(c))
		}
		if f < 0 || f >= 1 {
			return nil, fmt.Errorf("quota: ClassReserve[%s] must be in [0, 1), got %v", c, f)
		}
		reserve[c] = f
	}
	limits := make(map[int64]Limits, len(cfg.Portals))
	if cfg.Default != (Limits{}) {
		if err := cfg.Default.Validate(); err != nil {
			return nil, fmt.Errorf("quota: Default: %w", err)
		}
	}
	for id, l := range cfg.Portals {
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("quota: Portals[%d]: %w", id, err)
		}
		limits[id] = l.withDefaults()
	}
	g := &Governor{
		rdb:    cfg.Redis,
		prefix: cfg.KeyPrefix,
		shaping: shaping{
			burstFraction: cfg.BurstFraction, headroom: cfg.Headroom,
			minBurst: cfg.MinBurst, reserve: reserve,
		},
		cfg:        cfg,
		log:        cfg.Logger.With("component", "hubspot-quota"),
		now:        cfg.Now,
		limits:     limits,
		gates:      map[gateKey]chan struct{}{},
		local:      map[localKey]*localBucket{},
		localDaily: map[dailyKey]int{},
		exhausted:  map[int64]time.Time{},
	}
	if cfg.Redis != nil {
		g.limiter = redis_rate.NewLimiter(cfg.Redis)
	}
	if cfg.MeterProvider != nil {
		if err := g.registerMetrics(cfg.MeterProvider.Meter("github.com/signalbridge/signalbridge/libs/hubspot/quota")); err != nil {
			return nil, fmt.Errorf("quota: metrics: %w", err)
		}
	}
	return g, nil
}

// Limits returns the limits in force for a portal, or an error when the
// portal is unknown and no Default is configured.
func (g *Governor) Limits(portalID int64) (Limits, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limitsLocked(portalID)
}

func (g *Governor) limitsLocked(portalID int64) (Limits, error) {
	if l, ok := g.limits[portalID]; ok {
		return l, nil
	}
	if g.cfg.Default == (Limits{}) {
		return Limits{}, fmt.Errorf("quota: portal %d has no limits and Config.Default is empty", portalID)
	}
	return g.cfg.Default.withDefaults(), nil
}

// SetLimits replaces a portal's limits (for example after a tier change).
func (g *Governor) SetLimits(portalID int64, l Limits) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("quota: SetLimits portal %d: %w", portalID, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limits[portalID] = l.withDefaults()
	return nil
}

// Wait blocks until a call of the given class and kind may be sent to the
// portal, or returns an error: ctx's error, a *DailyLimitError (wrapping
// ErrDailyLimit) when the daily quota is spent for this class, or a
// validation error for an unknown class or kind.
func (g *Governor) Wait(ctx context.Context, portalID int64, class Class, kind Kind) error {
	b, refund, err := g.admit(ctx, portalID, class, kind)
	if err != nil {
		return err
	}
	release, err := g.enterGate(ctx, gateKey{portalID, kind, class})
	if err != nil {
		refund()
		return err
	}
	defer release()
	for {
		wait, err := g.take(ctx, portalID, kind, class, b)
		if err != nil {
			refund()
			return err
		}
		if wait <= 0 {
			return nil
		}
		if err := sleep(ctx, wait); err != nil {
			refund()
			return err
		}
	}
}

// Allow is the non-blocking Wait: it returns 0 when the call may be sent now,
// or how long to wait before asking again (for example to NAK a message with
// that delay instead of sleeping). Errors are those of Wait.
func (g *Governor) Allow(ctx context.Context, portalID int64, class Class, kind Kind) (time.Duration, error) {
	b, refund, err := g.admit(ctx, portalID, class, kind)
	if err != nil {
		return 0, err
	}
	wait, err := g.take(ctx, portalID, kind, class, b)
	if err != nil || wait > 0 {
		refund()
	}
	return wait, err
}

// admit validates the call, checks the daily state and counts the call
// against the daily quota. It returns the bucket to take from and a refund
// for the daily count.
func (g *Governor) admit(ctx context.Context, portalID int64, class Class, kind Kind) (bucket, func(), error) {
	if !class.Valid() {
		return bucket{}, nil, fmt.Errorf("quota: portal %d: invalid class %d", portalID, int(class))
	}
	if kind != Normal && kind != Search {
		return bucket{}, nil, fmt.Errorf("quota: portal %d: invalid kind %d", portalID, int(kind))
	}
	lim, err := g.Limits(portalID)
	if err != nil {
		return bucket{}, nil, err
	}
	if err := g.checkExhausted(ctx, portalID, class); err != nil {
		return bucket{}, nil, err
	}
	refund, err := g.takeDaily(ctx, portalID, class, lim)
	if err != nil {
		return bucket{}, nil, err
	}
	return g.bucketFor(lim, kind), refund, nil
}

func (g *Governor) bucketFor(lim Limits, kind Kind) bucket {
	if kind == Search {
		return g.shaping.shape(lim.SearchPerSecond, time.Second, 2)
	}
	return g.shaping.shape(lim.Burst, lim.Interval, g.shaping.minBurst)
}

// enterGate admits one goroutine per (portal, kind, class) at a time to poll
// the bucket, so waiters of one class queue locally instead of all polling
// Redis each time a token frees up.
func (g *Governor) enterGate(ctx context.Context, k gateKey) (func(), error) {
	g.mu.Lock()
	gate, ok := g.gates[k]
	if !ok {
		gate = make(chan struct{}, 1)
		g.gates[k] = gate
	}
	g.mu.Unlock()
	select {
	case gate <- struct{}{}:
		return func() { <-gate }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// take tries to take one token; it returns 0 on success or how long to wait
// before trying again.
func (g *Governor) take(ctx context.Context, portalID int64, kind Kind, class Class, b bucket) (time.Duration, error) {
	if g.useRedis() {
		rctx, cancel := context.WithTimeout(ctx, g.cfg.RedisTimeout)
		res, err := g.limiter.Allow(rctx, g.bucketKey(portalID, kind), redis_rate.Limit{
			Rate: b.rate, Period: b.period, Burst: b.classBurst[class-1],
		})
		cancel()
		if err == nil {
			g.redisOK()
			if res.Allowed > 0 {
				return 0, nil
			}
			// Spread the waiters of different replicas a little; never 0,
			// which means "admitted".
			return max(res.RetryAfter+jitter(b.emission()/4), time.Millisecond), nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		g.redisFailed(err)
	}
	return g.localTake(portalID, kind, class, b), nil
}

// DailyExhausted records that HubSpot refused the portal's calls with
// policy DAILY. Until `until`, Hourly and Bulk calls fail with an error
// wrapping ErrDailyLimit on every replica; Interactive and Webhook calls
// still pass.
func (g *Governor) DailyExhausted(portalID int64, until time.Time) {
	g.mu.Lock()
	if until.After(g.exhausted[portalID]) {
		g.exhausted[portalID] = until
	}
	g.mu.Unlock()
	ttl := until.Sub(g.now())
	if ttl <= 0 || !g.useRedis() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RedisTimeout)
	defer cancel()
	err := setMaxScript.Run(ctx, g.rdb, []string{g.exhaustedKey(portalID)},
		until.UnixMilli(), ttl.Milliseconds()).Err()
	if err != nil {
		g.redisFailed(err)
		return
	}
	g.redisOK()
}

// NextDailyReset returns when the portal's daily quota next resets: the
// next midnight in the portal's Location.
func (g *Governor) NextDailyReset(portalID int64) time.Time {
	lim, err := g.Limits(portalID)
	if err != nil {
		lim = Limits{}.withDefaults()
	}
	return nextMidnight(g.now(), lim.Location)
}

func nextMidnight(now time.Time, loc *time.Location) time.Time {
	t := now.In(loc)
	y, m, d := t.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

func (g *Governor) checkExhausted(ctx context.Context, portalID int64, class Class) error {
	if class.usesDailyReserve() {
		return nil
	}
	now := g.now()
	g.mu.Lock()
	until := g.exhausted[portalID]
	g.mu.Unlock()
	if until.After(now) {
		return &DailyLimitError{PortalID: portalID, Class: class, Until: until}
	}
	if !g.useRedis() {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, g.cfg.RedisTimeout)
	defer cancel()
	v, err := g.rdb.Get(rctx, g.exhaustedKey(portalID)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		g.redisOK()
		return nil
	case err != nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		g.redisFailed(err)
		return nil
	}
	g.redisOK()
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("quota: portal %d: bad daily-exhausted value %q: %w", portalID, v, err)
	}
	if until := time.UnixMilli(ms); until.After(now) {
		g.mu.Lock()
		if until.After(g.exhausted[portalID]) {
			g.exhausted[portalID] = until
		}
		g.mu.Unlock()
		return &DailyLimitError{PortalID: portalID, Class: class, Until: until}
	}
	return nil
}

// takeDaily counts one call against the portal's daily quota. It returns a
// refund function for calls that are then abandoned.
func (g *Governor) takeDaily(ctx context.Context, portalID int64, class Class, lim Limits) (func(), error) {
	noop := func() {}
	if lim.Daily <= 0 {
		return noop, nil
	}
	capacity := lim.Daily
	if !class.usesDailyReserve() {
		capacity -= lim.DailyReserve
	}
	now := g.now()
	day := now.In(lim.Location).Format("20060102")
	reset := nextMidnight(now, lim.Location)
	exhausted := &DailyLimitError{PortalID: portalID, Class: class, Until: reset}
	if g.useRedis() {
		key := g.dailyKey(portalID, day)
		ttl := reset.Sub(now) + time.Hour
		rctx, cancel := context.WithTimeout(ctx, g.cfg.RedisTimeout)
		n, err := takeDailyScript.Run(rctx, g.rdb, []string{key}, capacity, ttl.Milliseconds()).Int64()
		cancel()
		if err == nil {
			g.redisOK()
			if n < 0 {
				return nil, exhausted
			}
			return func() {
				c, cancel := context.WithTimeout(context.Background(), g.cfg.RedisTimeout)
				defer cancel()
				_ = g.rdb.Decr(c, key).Err() // best effort: a lost refund only makes us stricter
			}, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		g.redisFailed(err)
	}
	k := dailyKey{portalID, day}
	share := capacity / g.cfg.ExpectedReplicas
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.localDaily[k]; !ok {
		for old := range g.localDaily { // forget finished days
			if old.day != day {
				delete(g.localDaily, old)
			}
		}
	}
	if g.localDaily[k] >= share {
		return nil, exhausted
	}
	g.localDaily[k]++
	return func() {
		g.mu.Lock()
		g.localDaily[k]--
		g.mu.Unlock()
	}, nil
}

// Throttle empties the portal's bucket of the given kind for d on every
// replica. The client calls it after a 429 so that no replica sends another
// request into a window HubSpot has already closed.
func (g *Governor) Throttle(portalID int64, kind Kind, d time.Duration) {
	if d <= 0 {
		return
	}
	lim, err := g.Limits(portalID)
	if err != nil {
		return
	}
	b := g.bucketFor(lim, kind)
	// With TAT = now + d + (burst-1)·T the next token is free at now + d.
	g.pushBucket(portalID, kind, b, d+time.Duration(b.burst-1)*b.emission())
}

// Observe corrects the portal's state from the X-HubSpot-RateLimit-* headers
// of a (non-search) response. Missing or malformed headers are ignored.
func (g *Governor) Observe(portalID int64, h http.Header) {
	lim, err := g.Limits(portalID)
	if err != nil {
		return
	}
	changed := false
	if v, ok := headerInt(h, "X-Hubspot-Ratelimit-Max"); ok && v > 0 && v != lim.Burst {
		lim.Burst, changed = v, true
	}
	if v, ok := headerInt(h, "X-Hubspot-Ratelimit-Interval-Milliseconds"); ok && v > 0 &&
		time.Duration(v)*time.Millisecond != lim.Interval {
		lim.Interval, changed = time.Duration(v)*time.Millisecond, true
	}
	if v, ok := headerInt(h, "X-Hubspot-Ratelimit-Daily"); ok && v > 0 && v != lim.Daily {
		lim.Daily, changed = v, true
		if lim.DailyReserve >= lim.Daily {
			lim.DailyReserve = lim.Daily / 20
		}
	}
	if changed {
		g.mu.Lock()
		g.limits[portalID] = lim
		g.mu.Unlock()
		g.log.Info("hubspot limits updated from response headers", "portal", portalID,
			"burst", lim.Burst, "interval", lim.Interval, "daily", lim.Daily)
	}
	b := g.bucketFor(lim, Normal)
	if remaining, ok := headerInt(h, "X-Hubspot-Ratelimit-Remaining"); ok && remaining >= 0 && remaining < b.burst {
		// HubSpot sees fewer free requests than our burst: someone else (another
		// app in the account) spends the budget too. Leave at most `remaining`.
		g.pushBucket(portalID, Normal, b, time.Duration(b.burst-remaining)*b.emission())
	}
	if left, ok := headerInt(h, "X-Hubspot-Ratelimit-Daily-Remaining"); ok && lim.Daily > 0 && left >= 0 {
		g.raiseDaily(portalID, lim, lim.Daily-left)
	}
}

// pushBucket moves the bucket's theoretical arrival time to at least now+ahead.
func (g *Governor) pushBucket(portalID int64, kind Kind, b bucket, ahead time.Duration) {
	if g.useRedis() {
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RedisTimeout)
		defer cancel()
		err := pushTATScript.Run(ctx, g.rdb, []string{redisRatePrefix + g.bucketKey(portalID, kind)},
			ahead.Seconds()).Err()
		if err == nil {
			g.redisOK()
			return
		}
		g.redisFailed(err)
	}
	g.localPush(portalID, kind, b, ahead)
}

func (g *Governor) raiseDaily(portalID int64, lim Limits, used int) {
	now := g.now()
	day := now.In(lim.Location).Format("20060102")
	if g.useRedis() {
		ttl := nextMidnight(now, lim.Location).Sub(now) + time.Hour
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RedisTimeout)
		defer cancel()
		err := setMaxScript.Run(ctx, g.rdb, []string{g.dailyKey(portalID, day)}, used, ttl.Milliseconds()).Err()
		if err == nil {
			g.redisOK()
			return
		}
		g.redisFailed(err)
	}
	k := dailyKey{portalID, day}
	share := used / g.cfg.ExpectedReplicas
	g.mu.Lock()
	g.localDaily[k] = max(g.localDaily[k], share)
	g.mu.Unlock()
}

func (g *Governor) registerMetrics(m metric.Meter) error {
	degraded, err := m.Int64ObservableGauge("signalbridge.hubspot.quota.degraded",
		metric.WithDescription("1 while this replica admits HubSpot calls on its local share of the quota because Redis failed"))
	if err != nil {
		return err
	}
	exhausted, err := m.Int64ObservableGauge("signalbridge.hubspot.quota.daily_exhausted",
		metric.WithDescription("portals whose hourly and bulk HubSpot work is stopped until the daily quota resets"))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		now := g.now()
		g.mu.Lock()
		down := !g.redisDownAt.IsZero()
		n := 0
		for _, until := range g.exhausted {
			if until.After(now) {
				n++
			}
		}
		g.mu.Unlock()
		v := int64(0)
		if down {
			v = 1
		}
		o.ObserveInt64(degraded, v)
		o.ObserveInt64(exhausted, int64(n))
		return nil
	}, degraded, exhausted)
	return err
}

// Degraded reports whether the governor currently runs on its local share
// because Redis failed.
func (g *Governor) Degraded() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.redisDownAt.IsZero()
}

// useRedis reports whether to try Redis now: it is configured and either
// healthy or due for a probe.
func (g *Governor) useRedis() bool {
	if g.rdb == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.redisDownAt.IsZero() || g.now().Sub(g.redisDownAt) >= g.cfg.RetryRedisAfter
}

func (g *Governor) redisFailed(err error) {
	g.mu.Lock()
	first := g.redisDownAt.IsZero()
	g.redisDownAt = g.now()
	g.mu.Unlock()
	if first {
		g.log.Warn("redis unavailable: using the local share of the hubspot quota",
			"err", err, "replicas", g.cfg.ExpectedReplicas)
	}
}

func (g *Governor) redisOK() {
	g.mu.Lock()
	was := g.redisDownAt
	g.redisDownAt = time.Time{}
	g.mu.Unlock()
	if !was.IsZero() {
		g.log.Info("redis reachable again: hubspot quota shared", "down_for", g.now().Sub(was))
	}
}

func (g *Governor) bucketKey(portalID int64, kind Kind) string {
	return fmt.Sprintf("%s:{%d}:%s", g.prefix, portalID, kind)
}

func (g *Governor) dailyKey(portalID int64, day string) string {
	return fmt.Sprintf("%s:{%d}:daily:%s", g.prefix, portalID, day)
}

func (g *Governor) exhaustedKey(portalID int64) string {
	return fmt.Sprintf("%s:{%d}:daily-exhausted", g.prefix, portalID)
}

func headerInt(h http.Header, name string) (int, bool) {
	v := h.Get(name)
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false
	}
	return n, true
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
