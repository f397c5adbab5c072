package portal

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Registry is a live, in-memory view of every portal config in the KV bucket,
// kept current by a KV watch. It is safe for concurrent use. Configs returned by
// Get are shared: treat them as read-only.
type Registry struct {
	logger *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	mu      sync.RWMutex
	portals map[string]*Config
}

// Watch loads every portal config from kv, then keeps the registry in step with
// the bucket until ctx is done or Close is called. It returns once the initial
// values are loaded. A stored value that does not parse and validate, or whose
// portal_id differs from its key, is logged and skipped: the portal keeps its
// previous good config (or stays absent). Deleting or purging a key removes the portal.
func Watch(ctx context.Context, kv jetstream.KeyValue, logger *slog.Logger) (*Registry, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	wctx, cancel := context.WithCancel(ctx)
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch portals: %w", err)
	}
	r := &Registry{
		logger:  logger,
		cancel:  cancel,
		done:    make(chan struct{}),
		portals: map[string]*Config{},
	}
	loaded := make(chan struct{})
	go r.run(w, loaded)
	select {
	case <-loaded:
		return r, nil
	case <-r.done:
		r.Close()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("watch portals: %w", err)
		}
		return nil, fmt.Errorf("watch portals: watcher stopped before the initial values were loaded")
	case <-ctx.Done():
		r.Close()
		return nil, fmt.Errorf("watch portals: %w", ctx.Err())
	}
}

// run applies updates until the watcher's channel closes (on Close, on ctx done,
// or when the connection closes). It drains the channel to the end, so the
// watcher never blocks on a reader that has gone.
func (r *Registry) run(w jetstream.KeyWatcher, loaded chan<- struct{}) {
	defer close(r.done)
	for e := range w.Updates() {
		if e == nil { // the end of the initial values
			if loaded != nil {
				close(loaded)
				loaded = nil
			}
			continue
		}
		r.apply(e)
	}
}

func (r *Registry) apply(e jetstream.KeyValueEntry) {
	id := e.Key()
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		r.mu.Lock()
		_, had := r.portals[id]
		delete(r.portals, id)
		r.mu.Unlock()
		if had {
			r.logger.Info("portal config removed", slog.String("portal_id", id), slog.Uint64("revision", e.Revision()))
		}
		return
	}
	cfg, err := Parse(e.Value())
	if err == nil && cfg.PortalID != id {
		err = fmt.Errorf("%w: key %q holds the config of portal %q", ErrInvalidConfig, id, cfg.PortalID)
	}
	if err != nil {
		r.mu.RLock()
		_, kept := r.portals[id]
		r.mu.RUnlock()
		r.logger.Error("invalid portal config in KV skipped",
			slog.String("portal_id", id),
			slog.Uint64("revision", e.Revision()),
			slog.Bool("previous_config_kept", kept),
			slog.Any("error", err))
		return
	}
	r.mu.Lock()
	r.portals[id] = cfg
	r.mu.Unlock()
	r.logger.Info("portal config loaded", slog.String("portal_id", id), slog.Uint64("revision", e.Revision()))
}

// Get returns the current config of a portal. The Config is shared and must not be modified.
func (r *Registry) Get(portalID string) (*Config, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	cfg, ok := r.portals[portalID]
	return cfg, ok
}

// Portals returns the ids of all portals with a valid config, sorted.
func (r *Registry) Portals() []string {
	r.mu.RLock()
	ids := make([]string, 0, len(r.portals))
	for id := range r.portals {
		ids = append(ids, id)
	}
	r.mu.RUnlock()
	slices.Sort(ids)
	return ids
}

// Close stops watching and waits for the watch goroutine to end. The registry
// keeps answering from the last state it saw. Close is idempotent.
func (r *Registry) Close() {
	r.once.Do(func() {
		r.cancel() // unsubscribes the watcher, which closes its update channel
		<-r.done
	})
}
