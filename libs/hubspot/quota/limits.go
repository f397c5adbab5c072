package quota

import (
	"fmt"
	"math"
	"time"
)

// Class is the priority of a call. Lower values are more important.
type Class int

// Priority classes, most important first.
const (
	// Interactive calls are made while a person waits (UI, API callers).
	Interactive Class = iota + 1
	// Webhook calls react to a HubSpot webhook delivery.
	Webhook
	// Hourly calls belong to scheduled incremental syncs.
	Hourly
	// Bulk calls are backfills, imports and full syncs.
	Bulk
)

// classes lists every valid Class, most important first.
var classes = [...]Class{Interactive, Webhook, Hourly, Bulk}

// String returns the lower-case class name.
func (c Class) String() string {
	switch c {
	case Interactive:
		return "interactive"
	case Webhook:
		return "webhook"
	case Hourly:
		return "hourly"
	case Bulk:
		return "bulk"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Valid reports whether c is one of the defined classes.
func (c Class) Valid() bool { return c >= Interactive && c <= Bulk }

// usesDailyReserve reports whether the class may spend the daily reserve and
// keeps running after DailyExhausted.
func (c Class) usesDailyReserve() bool { return c == Interactive || c == Webhook }

// Kind selects the HubSpot budget a call spends.
type Kind int

// Kinds of calls.
const (
	// Normal calls spend the burst (per-interval) budget.
	Normal Kind = iota
	// Search calls (POST …/search) spend the CRM search budget instead.
	Search
)

// String returns the lower-case kind name.
func (k Kind) String() string {
	switch k {
	case Normal:
		return "normal"
	case Search:
		return "search"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Tier names a HubSpot subscription level for TierLimits.
type Tier string

// HubSpot tiers with distinct API limits (hubspot-api.md §1).
const (
	TierFree         Tier = "free"
	TierStarter      Tier = "starter"
	TierProfessional Tier = "professional"
	TierEnterprise   Tier = "enterprise"
	// TierAPIAddOn is any tier with the API Limit Increase pack.
	TierAPIAddOn Tier = "api-add-on"
	// TierOAuthApp is a public OAuth app installed in an account: no daily cap.
	TierOAuthApp Tier = "oauth-app"
)

// Limits are one portal's HubSpot budgets.
type Limits struct {
	// Burst is HubSpot's request limit per Interval (X-HubSpot-RateLimit-Max).
	Burst int
	// Interval is the burst window (X-HubSpot-RateLimit-Interval-Milliseconds); default 10 s.
	Interval time.Duration
	// SearchPerSecond is the CRM search limit; default 5.
	SearchPerSecond int
	// Daily is the daily request quota; 0 means no daily cap (OAuth apps).
	Daily int
	// DailyReserve is the part of Daily that only Interactive and Webhook
	// calls may spend.
	DailyReserve int
	// Location is the account's time zone; the daily quota resets at its
	// midnight. Nil means UTC.
	Location *time.Location
}

// TierLimits returns HubSpot's published limits for a tier, with a daily
// reserve of 5 % of the daily quota.
func TierLimits(t Tier) (Limits, error) {
	l := Limits{Interval: 10 * time.Second, SearchPerSecond: 5}
	switch t {
	case TierFree, TierStarter:
		l.Burst, l.Daily = 100, 250_000
	case TierProfessional:
		l.Burst, l.Daily = 190, 650_000
	case TierEnterprise:
		l.Burst, l.Daily = 190, 1_000_000
	case TierAPIAddOn:
		l.Burst, l.Daily = 250, 2_000_000
	case TierOAuthApp:
		l.Burst, l.Daily = 110, 0
	default:
		return Limits{}, fmt.Errorf("quota: unknown tier %q", t)
	}
	l.DailyReserve = l.Daily / 20
	return l, nil
}

func (l Limits) withDefaults() Limits {
	if l.Interval <= 0 {
		l.Interval = 10 * time.Second
	}
	if l.SearchPerSecond <= 0 {
		l.SearchPerSecond = 5
	}
	if l.Location == nil {
		l.Location = time.UTC
	}
	return l
}

// Validate reports the first invalid field.
func (l Limits) Validate() error {
	switch {
	case l.Burst <= 0:
		return fmt.Errorf("limits: Burst must be > 0, got %d", l.Burst)
	case l.Interval < 0:
		return fmt.Errorf("limits: Interval must be >= 0, got %s", l.Interval)
	case l.SearchPerSecond < 0:
		return fmt.Errorf("limits: SearchPerSecond must be >= 0, got %d", l.SearchPerSecond)
	case l.Daily < 0:
		return fmt.Errorf("limits: Daily must be >= 0, got %d", l.Daily)
	case l.DailyReserve < 0 || (l.Daily > 0 && l.DailyReserve >= l.Daily):
		return fmt.Errorf("limits: DailyReserve must be in [0, Daily), got %d (Daily %d)", l.DailyReserve, l.Daily)
	}
	return nil
}

// bucket is the GCRA shape derived from one HubSpot limit.
type bucket struct {
	rate   int           // tokens per period
	period time.Duration // refill period
	burst  int           // burst of the most important class
	// classBurst[c-1] is the burst used by class c (burst minus its reserve).
	classBurst [4]int
}

// emission is the time one token takes to refill.
func (b bucket) emission() time.Duration { return b.period / time.Duration(b.rate) }

// shape turns a HubSpot limit of `limit` requests per `period` into a GCRA
// bucket whose every window of one period holds at most `limit` requests.
func (s shaping) shape(limit int, period time.Duration, minBurst int) bucket {
	burst := max(minBurst, int(math.Ceil(float64(limit)*s.burstFraction)))
	headroom := int(math.Floor(float64(limit) * s.headroom))
	if burst >= limit {
		// Tiny limits (search at 5/s): keep at least one token of rate.
		burst = max(1, limit/2)
	}
	rate := max(1, limit-burst-headroom)
	b := bucket{rate: rate, period: period, burst: burst}
	for i, c := range classes {
		reserve := int(math.Ceil(float64(burst) * s.reserve[c]))
		b.classBurst[i] = max(1, burst-reserve)
	}
	return b
}

// shaping holds the configuration that turns limits into buckets.
type shaping struct {
	burstFraction float64
	headroom      float64
	minBurst      int
	reserve       map[Class]float64
}
