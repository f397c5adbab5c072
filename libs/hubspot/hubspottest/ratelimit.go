package hubspottest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate-limit policy names as they appear in 429 bodies and Stats.RateLimited.
const (
	PolicyTenSecondly = "TEN_SECONDLY_ROLLING"
	PolicySecondly    = "SECONDLY"
	PolicyDaily       = "DAILY"
)

// Tier names accepted by PortalOptions.Tier.
const (
	TierFree         = "free"
	TierStarter      = "starter"
	TierProfessional = "professional"
	TierEnterprise   = "enterprise"
	TierAPIAddon     = "api_addon"
)

// limits are one portal's quotas.
type limits struct {
	burst        int           // requests per interval (private app / service key)
	oauthBurst   int           // requests per interval per OAuth app
	interval     time.Duration // rolling burst window
	daily        int           // requests per UTC day (private app / service key)
	searchPerSec int           // search requests per rolling second
}

// tierLimits maps a tier to HubSpot's published limits (design/hubspot-api.md
// §1). api_addon is Enterprise plus one API limit increase pack.
func tierLimits(tier string) (limits, error) {
	l := limits{interval: 10 * time.Second, searchPerSec: 5, oauthBurst: 110}
	switch strings.ToLower(tier) {
	case "", TierFree, TierStarter:
		l.burst, l.daily = 100, 250_000
	case TierProfessional:
		l.burst, l.daily = 190, 650_000
	case TierEnterprise:
		l.burst, l.daily = 190, 1_000_000
	case TierAPIAddon:
		l.burst, l.daily = 250, 2_000_000
	default:
		return l, fmt.Errorf("unknown tier %q (want free, starter, professional, enterprise or api_addon)", tier)
	}
	return l, nil
}

// window is a rolling-window counter: the timestamps of admitted requests
// within the last span.
type window struct {
	span  time.Duration
	times []time.Time
	head  int
}

func (w *window) count(now time.Time) int {
	cut := now.Add(-w.span)
	for w.head < len(w.times) && !w.times[w.head].After(cut) {
		w.head++
	}
	if w.head > 4096 && w.head*2 > len(w.times) {
		w.times = append(w.times[:0], w.times[w.head:]...)
		w.head = 0
	}
	return len(w.times) - w.head
}

func (w *window) add(now time.Time) { w.times = append(w.times, now) }

// limiter enforces one portal's limits.
type limiter struct {
	mu       sync.Mutex
	l        limits
	burst    window            // private-app / service-key requests
	oauth    map[int64]*window // per OAuth app
	search   window
	day      time.Time // UTC midnight of the current day
	dayCount int
}

func newLimiter(l limits) *limiter {
	return &limiter{
		l:      l,
		burst:  window{span: l.interval},
		oauth:  map[int64]*window{},
		search: window{span: time.Second},
	}
}

// admit decides whether one request may proceed. It sets the rate-limit
// headers on w and, when the request is refused, writes the 429 and returns
// the policy name.
func (lm *limiter) admit(w http.ResponseWriter, ti *tokenInfo, search bool, now time.Time) string {
	lm.mu.Lock()
	defer lm.mu.Unlock()

	day := now.UTC().Truncate(24 * time.Hour)
	if !day.Equal(lm.day) {
		lm.day, lm.dayCount = day, 0
	}
	countsDaily := !ti.oauth // OAuth calls have no daily cap.

	if countsDaily && lm.dayCount >= lm.l.daily {
		if !search {
			lm.setHeaders(w, ti, 0)
		}
		write429(w, PolicyDaily, "You have reached your daily limit.")
		return PolicyDaily
	}

	if search {
		// Search has its own per-second limit and no rate-limit headers; it
		// is exempt from the ten-secondly window.
		if lm.search.count(now) >= lm.l.searchPerSec {
			write429(w, PolicySecondly, "You have reached your secondly limit.")
			return PolicySecondly
		}
		lm.search.add(now)
		if countsDaily {
			lm.dayCount++
		}
		return ""
	}

	win, limit := &lm.burst, lm.l.burst
	if ti.oauth {
		win = lm.oauth[ti.appID]
		if win == nil {
			win = &window{span: lm.l.interval}
			lm.oauth[ti.appID] = win
		}
		limit = lm.l.oauthBurst
	}
	if n := win.count(now); n >= limit {
		lm.setHeadersFor(w, ti, limit, 0)
		write429(w, PolicyTenSecondly, "You have reached your ten_secondly_rolling limit.")
		return PolicyTenSecondly
	}
	win.add(now)
	if countsDaily {
		lm.dayCount++
	}
	lm.setHeadersFor(w, ti, limit, limit-win.count(now))
	return ""
}

func (lm *limiter) setHeaders(w http.ResponseWriter, ti *tokenInfo, remaining int) {
	limit := lm.l.burst
	if ti.oauth {
		limit = lm.l.oauthBurst
	}
	lm.setHeadersFor(w, ti, limit, remaining)
}

func (lm *limiter) setHeadersFor(w http.ResponseWriter, ti *tokenInfo, limit, remaining int) {
	h := w.Header()
	h.Set("X-HubSpot-RateLimit-Max", strconv.Itoa(limit))
	h.Set("X-HubSpot-RateLimit-Remaining", strconv.Itoa(max(remaining, 0)))
	h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", strconv.FormatInt(lm.l.interval.Milliseconds(), 10))
	if !ti.oauth {
		h.Set("X-HubSpot-RateLimit-Daily", strconv.Itoa(lm.l.daily))
		h.Set("X-HubSpot-RateLimit-Daily-Remaining", strconv.Itoa(max(lm.l.daily-lm.dayCount, 0)))
	}
}

// write429 writes HubSpot's rate-limit body. The ten-secondly and daily
// bodies follow the documented example (errorType, policyName, requestId);
// the search body follows recorded HubSpot responses, which carry only
// status, message, correlationId and category.
func write429(w http.ResponseWriter, policy, message string) {
	body := errorBody{
		Status:        "error",
		Message:       message,
		CorrelationID: newCorrelationID(),
		Category:      "RATE_LIMITS",
	}
	if policy != PolicySecondly {
		body.ErrorType = "RATE_LIMIT"
		body.PolicyName = policy
		body.RequestID = newCorrelationID()
	}
	writeJSON(w, http.StatusTooManyRequests, body)
}
