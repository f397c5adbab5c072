package quota

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// The local fallback: while Redis is unreachable each replica admits calls
// from its own x/time/rate limiter holding 1/ExpectedReplicas of the shared
// bucket, with the same per-class reserves.

type localKey struct {
	portal int64
	kind   Kind
}

type dailyKey struct {
	portal int64
	day    string
}

type localBucket struct {
	lim          *rate.Limiter
	shared       bucket // the shared shape this share was cut from
	burst        int
	classBurst   [4]int
	blockedUntil time.Time
}

// localShare cuts a replica's share out of a shared bucket.
func (g *Governor) localShare(b bucket) (rate.Limit, int, [4]int) {
	n := g.cfg.ExpectedReplicas
	every := rate.Limit(float64(b.rate) / float64(n) / b.period.Seconds())
	burst := max(1, b.burst/n)
	var cb [4]int
	for i := range classes {
		reserved := float64(b.burst-b.classBurst[i]) / float64(b.burst)
		cb[i] = max(1, burst-int(math.Ceil(float64(burst)*reserved)))
	}
	return every, burst, cb
}

// localBucketLocked returns the replica's bucket for (portal, kind), creating
// or reshaping it as needed. g.mu must be held.
func (g *Governor) localBucketLocked(portalID int64, kind Kind, b bucket) *localBucket {
	k := localKey{portalID, kind}
	lb := g.local[k]
	if lb != nil && lb.shared == b {
		return lb
	}
	every, burst, cb := g.localShare(b)
	if lb == nil {
		lb = &localBucket{lim: rate.NewLimiter(every, burst)}
		g.local[k] = lb
	} else {
		now := g.now()
		lb.lim.SetLimitAt(now, every)
		lb.lim.SetBurstAt(now, burst)
	}
	lb.shared, lb.burst, lb.classBurst = b, burst, cb
	return lb
}

// localTake takes a token from the local share, or says how long to wait.
func (g *Governor) localTake(portalID int64, kind Kind, class Class, b bucket) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	lb := g.localBucketLocked(portalID, kind, b)
	now := g.now()
	if now.Before(lb.blockedUntil) {
		return lb.blockedUntil.Sub(now)
	}
	need := float64(lb.burst-lb.classBurst[class-1]) + 1
	tokens := lb.lim.TokensAt(now)
	if tokens >= need && lb.lim.AllowN(now, 1) {
		return 0
	}
	perToken := time.Duration(float64(time.Second) / float64(lb.lim.Limit()))
	wait := time.Duration((need - tokens) * float64(perToken))
	return max(wait, time.Millisecond)
}

// localPush is pushBucket for the local share: after it, the share holds at
// most the tokens the shared bucket would hold with its TAT at now+ahead.
func (g *Governor) localPush(portalID int64, kind Kind, b bucket, ahead time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	lb := g.localBucketLocked(portalID, kind, b)
	now := g.now()
	sharedLeft := float64(b.burst) - float64(ahead)/float64(b.emission())
	left := sharedLeft / float64(g.cfg.ExpectedReplicas)
	tokens := lb.lim.TokensAt(now)
	if left < 0 {
		perToken := float64(time.Second) / float64(lb.lim.Limit())
		until := now.Add(time.Duration(-left * perToken))
		if until.After(lb.blockedUntil) {
			lb.blockedUntil = until
		}
		left = 0
	}
	if drain := int(math.Ceil(tokens - left)); drain > 0 {
		lb.lim.AllowN(now, drain)
	}
}
