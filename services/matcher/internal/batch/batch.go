// Package batch coalesces look-ups of keys from concurrent callers into batched fetches,
// with one flight per key: the matcher turns many concurrent cache misses into few
// HubSpot calls (`domain IN [...]` searches, batch reads by email, webhook re-reads).
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// FetchFunc fetches keys of one group (a portal, or a portal and object type). It returns
// the value of every key it found; keys left out were looked for and not found.
type FetchFunc[K comparable, V any] func(ctx context.Context, group string, keys []K) (map[K]V, error)

// Options configure a Batcher.
type Options struct {
	// Max is the most keys per fetch (default 100).
	Max int
	// Linger is how long the first pending key of a group waits for others before its
	// fetch starts (default 5ms). A fetch starts at once when Max keys are pending.
	Linger time.Duration
	// Concurrency bounds fetches running at once across groups (default 8).
	Concurrency int
	// Timeout bounds one fetch (default 30s). Fetches run on their own context, since
	// callers with different deadlines share them.
	Timeout time.Duration
	// Context decorates the context a fetch runs under (for example to set a quota
	// class); nil leaves it as it is.
	Context func(context.Context) context.Context
}

// Stats count a batcher's work.
type Stats struct {
	Fetches int64 // fetch calls
	Keys    int64 // keys fetched
	Joined  int64 // look-ups that joined a flight already pending or running
}

// Batcher coalesces look-ups. It is safe for concurrent use.
type Batcher[K comparable, V any] struct {
	fetch FetchFunc[K, V]
	opts  Options
	slots chan struct{}

	mu      sync.Mutex
	pending map[string]*pending[K, V]
	flights map[flightKey[K]]*flight[V]
	stats   Stats
}

type flightKey[K comparable] struct {
	group string
	key   K
}

type flight[V any] struct {
	done  chan struct{}
	val   V
	found bool
	err   error
}

type pending[K comparable, V any] struct {
	keys    []K
	flights []*flight[V]
	timer   *time.Timer
}

// New returns a Batcher over fetch.
func New[K comparable, V any](fetch FetchFunc[K, V], opts Options) *Batcher[K, V] {
	if opts.Max <= 0 {
		opts.Max = 100
	}
	if opts.Linger <= 0 {
		opts.Linger = 5 * time.Millisecond
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	return &Batcher[K, V]{
		fetch: fetch, opts: opts, slots: make(chan struct{}, opts.Concurrency),
		pending: map[string]*pending[K, V]{}, flights: map[flightKey[K]]*flight[V]{},
	}
}

// Stats returns the counters so far.
func (b *Batcher[K, V]) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// Get looks up keys of group and returns the found ones. It waits for the flights of
// its keys (its own or other callers') or for ctx; the first fetch error is returned.
func (b *Batcher[K, V]) Get(ctx context.Context, group string, keys []K) (map[K]V, error) {
	flights := make([]*flight[V], len(keys))
	var dispatch []*pending[K, V]
	b.mu.Lock()
	for i, k := range keys {
		fk := flightKey[K]{group, k}
		if f, ok := b.flights[fk]; ok {
			flights[i] = f
			b.stats.Joined++
			continue
		}
		f := &flight[V]{done: make(chan struct{})}
		b.flights[fk] = f
		flights[i] = f
		p := b.pending[group]
		if p == nil {
			p = &pending[K, V]{}
			b.pending[group] = p
		}
		p.keys = append(p.keys, k)
		p.flights = append(p.flights, f)
		if len(p.keys) >= b.opts.Max {
			if p.timer != nil {
				p.timer.Stop()
			}
			delete(b.pending, group)
			dispatch = append(dispatch, p)
		} else if p.timer == nil {
			p.timer = time.AfterFunc(b.opts.Linger, func() { b.flush(group, p) })
		}
	}
	b.mu.Unlock()
	for _, p := range dispatch {
		go b.run(group, p)
	}

	out := make(map[K]V, len(keys))
	var errs []error
	for i, f := range flights {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("batch: waiting for %d keys of %s: %w", len(keys), group, ctx.Err())
		}
		switch {
		case f.err != nil:
			errs = append(errs, f.err)
		case f.found:
			out[keys[i]] = f.val
		}
	}
	if len(errs) > 0 {
		return out, errs[0]
	}
	return out, nil
}

// flush dispatches a group's pending keys when its linger timer fires, unless they
// were dispatched already (Max reached).
func (b *Batcher[K, V]) flush(group string, p *pending[K, V]) {
	b.mu.Lock()
	if b.pending[group] != p {
		b.mu.Unlock()
		return
	}
	delete(b.pending, group)
	b.mu.Unlock()
	b.run(group, p)
}

// run fetches one batch and completes its flights.
func (b *Batcher[K, V]) run(group string, p *pending[K, V]) {
	b.slots <- struct{}{}
	defer func() { <-b.slots }()
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.Timeout)
	defer cancel()
	if b.opts.Context != nil {
		ctx = b.opts.Context(ctx)
	}
	vals, err := b.call(ctx, group, p.keys)
	b.mu.Lock()
	b.stats.Fetches++
	b.stats.Keys += int64(len(p.keys))
	for i, k := range p.keys {
		f := p.flights[i]
		if err != nil {
			f.err = err
		} else if v, ok := vals[k]; ok {
			f.val, f.found = v, true
		}
		delete(b.flights, flightKey[K]{group, k})
		close(f.done)
	}
	b.mu.Unlock()
}

// call runs fetch, turning a panic into an error so that waiters are always released.
func (b *Batcher[K, V]) call(ctx context.Context, group string, keys []K) (vals map[K]V, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New(fmt.Sprint("batch: fetch panicked: ", r))
		}
	}()
	return b.fetch(ctx, group, keys)
}
