// Package quota is the portal-wide HubSpot request governor shared by every
// replica of every service that talks to one HubSpot portal (account).
//
// HubSpot enforces three budgets per portal, and a 429 from any of them costs
// the whole account: a burst limit per rolling interval (100 / 190 / 250
// requests per 10 s by tier), the CRM search limit (5 requests per second) and,
// for private apps and service keys, a daily quota that resets at midnight in
// the account's time zone. A Governor keeps all replicas under those limits by
// holding the state in Redis, so N replicas behave like one client.
//
// # Buckets (GCRA)
//
// The burst and search limits are generic cell rate algorithm (GCRA) buckets
// run atomically in Redis by github.com/go-redis/redis_rate. A GCRA bucket with
// burst B and rate R per interval admits at most B+R requests in any window of
// one interval, so for a HubSpot limit L the governor uses
//
//	B = max(MinBurst, ceil(L × BurstFraction))   R = L − B − floor(L × Headroom)
//
// which keeps every rolling window at or below L while bulk throughput stays
// at R/L of the ceiling (96 % for L = 1000, 91 % for the 100/10 s tier).
//
// # Priority classes
//
// Calls carry a Class: Interactive > Webhook > Hourly > Bulk. All classes share
// the same Redis key (the same theoretical arrival time), but a lower class
// runs the GCRA test with a smaller burst: class c may take a token only while
// more than reserve(c) = ceil(B × ClassReserve[c]) tokens remain in the bucket.
// With the default reserves (0, ¼, ½, ¾ of B) a bulk sync that saturates the
// portal leaves ¾ of the burst untouched, and every token that refills goes to
// that reserve first, so interactive and webhook-driven calls find a token at
// once as long as they do not themselves exceed the portal's rate. Inside one
// replica each (portal, kind, class) has a single-slot gate: one goroutine per
// class polls Redis while the others queue behind it, which keeps a crowd of
// bulk workers from hammering Redis each time a token frees up, and never
// makes a higher class queue behind a lower one.
//
// # Daily quota
//
// A per-portal, per-day counter in Redis counts every admitted call. Hourly and
// Bulk calls stop at Daily − DailyReserve; Interactive and Webhook calls may use
// the reserve up to Daily. When HubSpot itself answers 429 DAILY the client
// calls DailyExhausted, after which Hourly and Bulk calls fail at once with an
// error wrapping ErrDailyLimit (carrying the reset time) until the reset, on
// every replica, while Interactive and Webhook calls are still admitted.
//
// # Corrections from HubSpot
//
// Observe reads the X-HubSpot-RateLimit-* headers of each response: a Max or
// Interval that differs from the configuration replaces it for that portal, a
// Remaining below the governor's own view pushes the shared bucket back (other
// apps in the account spend the same budget), and Daily-Remaining raises the
// daily counter. Throttle empties the bucket for a while after a 429.
//
// # Redis outages
//
// When Redis fails (error or RedisTimeout), the replica switches to a local
// golang.org/x/time/rate limiter per portal with a conservative share of the
// budget (1/ExpectedReplicas of the rate, burst and daily quota) and the same
// class reserves, logs the transition once, and probes Redis again every
// RetryRedisAfter. Nothing blocks on a dead Redis and nothing panics; when
// Redis answers again the shared buckets take over.
package quota
