package resolve

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Health tracks whether Redis answers. While it does not, the resolver works without
// it (straight from HubSpot, with a small in-process cache) and a probe checks it again
// every interval, so requests do not each pay a Redis timeout.
type Health struct {
	rdb      redis.UniversalClient
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	down    bool
	since   time.Time
	lastErr error
}

// NewHealth returns a Health for rdb that probes every interval (default 500ms) while
// Redis is down.
func NewHealth(rdb redis.UniversalClient, interval time.Duration, log *slog.Logger) *Health {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Health{rdb: rdb, interval: interval, log: log}
}

// Up reports whether Redis is believed to answer.
func (h *Health) Up() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.down
}

// Status returns whether Redis is down, since when, and the error that said so.
func (h *Health) Status() (down bool, since time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down, h.since, h.lastErr
}

// Fail records a failed Redis call. Errors of the caller's own context do not count.
func (h *Health) Fail(ctx context.Context, err error) {
	if err == nil || ctx.Err() != nil {
		return
	}
	h.mu.Lock()
	first := !h.down
	if first {
		h.down, h.since = true, time.Now()
	}
	h.lastErr = err
	h.mu.Unlock()
	if first {
		h.log.Warn("redis unavailable: matching straight from HubSpot (degraded)", "err", err)
	}
}

func (h *Health) ok() {
	h.mu.Lock()
	was, since := h.down, h.since
	h.down, h.lastErr = false, nil
	h.mu.Unlock()
	if was {
		h.log.Info("redis reachable again: matching from the mirror", "down_for", time.Since(since).Round(time.Millisecond))
	}
}

// Run probes Redis every interval until ctx ends: while it is down, to bring it back;
// while it is up, to notice an outage before a request does.
func (h *Health) Run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.Probe(ctx)
	}
}

// Probe pings Redis once and records the outcome.
func (h *Health) Probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, max(h.interval, 200*time.Millisecond))
	defer cancel()
	if err := h.rdb.Ping(pctx).Err(); err != nil {
		h.Fail(ctx, err)
		return
	}
	h.ok()
}
