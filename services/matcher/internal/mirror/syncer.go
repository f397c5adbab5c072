package mirror

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/portal"
)

// Portals is the live set of portal configurations (*portal.Registry).
type Portals interface {
	Portals() []string
	Get(portalID string) (*portal.Config, bool)
}

// ClientFunc returns the HubSpot client of a portal.
type ClientFunc func(portalID string) (*hubspot.Client, error)

// SyncerOptions configure a Syncer.
type SyncerOptions struct {
	// Tick is how often the syncer looks for due reads (default 15s).
	Tick time.Duration
	// FullEvery repeats the full read (which also drops records deleted in HubSpot
	// without a webhook) this often; 0 means 24h, negative never.
	FullEvery time.Duration
	// DefaultInterval is the incremental read interval of a portal whose config has
	// none (default 1h); configs set sync.crm_read_interval.
	DefaultInterval time.Duration
	// RetryAfter is the pause after a failed read (default 1m).
	RetryAfter time.Duration
	// Concurrency bounds the portals read at once by this replica (default 2).
	Concurrency int
	// LockTTL is the lease on a portal's reads, renewed while reading (default 2m).
	LockTTL time.Duration
	Now     func() time.Time
	Logger  *slog.Logger
}

// Syncer runs the full and incremental reads of every portal when they are due. Replicas
// share the work through a per-portal lease in Redis.
type Syncer struct {
	reader  *Reader
	portals Portals
	clients ClientFunc
	opts    SyncerOptions
	token   string
	log     *slog.Logger
	slots   chan struct{}

	mu      sync.Mutex
	running map[string]bool
	wg      sync.WaitGroup
}

// NewSyncer returns a Syncer.
func NewSyncer(reader *Reader, portals Portals, clients ClientFunc, opts SyncerOptions) *Syncer {
	if opts.Tick <= 0 {
		opts.Tick = 15 * time.Second
	}
	if opts.FullEvery == 0 {
		opts.FullEvery = 24 * time.Hour
	}
	if opts.DefaultInterval <= 0 {
		opts.DefaultInterval = time.Hour
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Minute
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 2
	}
	if opts.LockTTL <= 0 {
		opts.LockTTL = 2 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Syncer{
		reader: reader, portals: portals, clients: clients, opts: opts,
		token: rand.Text(), log: opts.Logger, slots: make(chan struct{}, opts.Concurrency),
		running: map[string]bool{},
	}
}

// Run checks for due reads every Tick until ctx ends, then waits for reads in progress
// (they stop at ctx's end; their cursors cover what was written).
func (s *Syncer) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.Tick)
	defer t.Stop()
	for {
		s.tick(ctx)
		select {
		case <-ctx.Done():
			s.wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

func (s *Syncer) tick(ctx context.Context) {
	for _, id := range s.portals.Portals() {
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		busy := s.running[id]
		s.mu.Unlock()
		if busy {
			continue
		}
		plan, err := s.plan(ctx, id)
		if err != nil {
			// Redis is the likely cause, and it is shared by every portal: try again at
			// the next tick rather than once per portal.
			s.log.Warn("crm read planning failed", "portal", id, "err", err)
			return
		}
		if len(plan) == 0 {
			continue
		}
		select {
		case s.slots <- struct{}{}:
		default:
			return // every slot busy; the next tick comes back
		}
		s.mu.Lock()
		s.running[id] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.slots }()
			defer func() {
				s.mu.Lock()
				delete(s.running, id)
				s.mu.Unlock()
			}()
			if err := s.execute(ctx, id, plan); err != nil && !errors.Is(err, errLocked) {
				s.log.Warn("crm read failed", "portal", id, "err", err)
			}
		}()
	}
}

// step is one read to do.
type step struct {
	obj  Object
	mode string
}

// interval is the portal's incremental read interval.
func (s *Syncer) interval(id string) time.Duration {
	if cfg, ok := s.portals.Get(id); ok && cfg.Sync.CRMReadInterval.Duration > 0 {
		return cfg.Sync.CRMReadInterval.Duration
	}
	return s.opts.DefaultInterval
}

// plan returns the reads due for a portal.
func (s *Syncer) plan(ctx context.Context, id string) ([]step, error) {
	st, err := s.reader.store.State(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	every := s.interval(id)
	var steps []step
	for _, obj := range Objects {
		last, hasLast := st.Runs[string(obj)]
		full, hasFull := st.Runs[string(obj)+":full"]
		okFull := hasFull && full.Error == ""
		wait := every
		if hasLast && last.Error != "" {
			wait = min(every, s.opts.RetryAfter)
		}
		switch {
		case !okFull:
			if !hasLast || !now.Before(last.Started.Add(min(every, s.opts.RetryAfter))) {
				steps = append(steps, step{obj, ModeFull})
			}
		case s.opts.FullEvery > 0 && !now.Before(full.Started.Add(s.opts.FullEvery)):
			steps = append(steps, step{obj, ModeFull})
		case !now.Before(last.Started.Add(wait)):
			steps = append(steps, step{obj, ModeIncremental})
		}
	}
	return steps, nil
}

var errLocked = errors.New("another replica is reading this portal")

// execute runs the steps under the portal's lease.
func (s *Syncer) execute(ctx context.Context, id string, steps []step) error {
	store := s.reader.store
	ok, err := store.Lock(ctx, id, s.token, s.opts.LockTTL)
	if err != nil {
		return err
	}
	if !ok {
		return errLocked
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(s.opts.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				if held, err := store.Lock(rctx, id, s.token, s.opts.LockTTL); err == nil && !held {
					s.log.Warn("crm read lease lost; stopping", "portal", id)
					cancel()
					return
				}
			}
		}
	}()
	defer func() {
		cancel()
		<-renewed
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer ucancel()
		_ = store.SetRunning(uctx, id, "")
		_ = store.Unlock(uctx, id, s.token)
	}()

	hc, err := s.clients(id)
	if err != nil {
		err = fmt.Errorf("hubspot client of portal %s: %w", id, err)
		now := s.opts.Now()
		for _, st := range steps { // recorded like a failed read, so it shows and is retried
			_ = store.SaveRun(rctx, id, Run{Object: st.obj, Mode: st.mode, Started: now, Finished: now, Error: err.Error()})
		}
		return err
	}
	readCtx := hubspot.WithClass(rctx, quota.Hourly)
	var errs []error
	for _, st := range steps {
		_ = store.SetRunning(readCtx, id, st.mode+" "+string(st.obj))
		var err error
		if st.mode == ModeFull {
			_, err = s.reader.Full(readCtx, id, hc, st.obj)
		} else {
			_, err = s.reader.Incremental(readCtx, id, hc, st.obj)
		}
		if err != nil {
			errs = append(errs, err)
			if readCtx.Err() != nil {
				break
			}
		}
	}
	if err := s.markReady(readCtx, id); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// markReady sets the ready flag once every object had a successful full read.
func (s *Syncer) markReady(ctx context.Context, id string) error {
	st, err := s.reader.store.State(ctx, id)
	if err != nil || st.Ready {
		return err
	}
	for _, obj := range Objects {
		if r, ok := st.Runs[string(obj)+":full"]; !ok || r.Error != "" {
			return nil
		}
	}
	return s.reader.store.SetReady(ctx, id)
}

// SyncPortal runs the reads due for one portal now and waits for them (tests, admin).
// It returns errLocked's message when another replica holds the lease.
func (s *Syncer) SyncPortal(ctx context.Context, id string) error {
	plan, err := s.plan(ctx, id)
	if err != nil || len(plan) == 0 {
		return err
	}
	return s.execute(ctx, id, plan)
}

// ReadNow runs one read of one object for a portal now, whatever is due (tests, admin).
func (s *Syncer) ReadNow(ctx context.Context, id string, obj Object, mode string) error {
	return s.execute(ctx, id, []step{{obj, mode}})
}
