package engine

import (
	"context"
	"errors"
	"time"

	scoresyncv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scoresync/v1"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

// Schedule starts the portals' scheduled runs until ctx ends. Every replica runs it; the
// portal lock and a compare-and-set on the portal's state (LastSlot) make sure each slot is
// run once. A portal whose score sync gets enabled runs first at its next slot (or on
// TriggerSync); slots missed while no replica ran are caught up with one run. A run that
// paused on the daily quota is resumed (as a delta run) once the quota resets.
func (e *Engine) Schedule(ctx context.Context) {
	next := map[string]time.Time{} // portal -> when to look at it again
	tick := time.NewTicker(e.o.SchedulerTick)
	defer tick.Stop()
	lastSweep := e.now()
	for {
		e.scheduleOnce(ctx, next)
		if now := e.now(); now.Sub(lastSweep) >= e.o.SweepEvery {
			lastSweep = now
			e.sweep(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (e *Engine) scheduleOnce(ctx context.Context, next map[string]time.Time) {
	now := e.now()
	seen := map[string]bool{}
	for _, id := range e.d.Portals.Portals() {
		if ctx.Err() != nil {
			return
		}
		cfg, ok := e.d.Portals.Get(id)
		if !ok || !cfg.ScoreSync.Enabled {
			continue
		}
		seen[id] = true
		if t, ok := next[id]; ok && now.Before(t) {
			continue
		}
		// Look again at the latest after recheckEvery: another replica may have changed the
		// portal's state (a paused run sets ResumeAt).
		next[id] = minTime(e.checkPortal(ctx, id, cfg, now), now.Add(max(e.o.SchedulerTick, recheckEvery)))
	}
	for id := range next {
		if !seen[id] {
			delete(next, id)
		}
	}
}

// checkPortal starts the portal's run when one is due and returns when to look again.
func (e *Engine) checkPortal(ctx context.Context, id string, cfg *portal.Config, now time.Time) time.Time {
	retry := now.Add(e.o.SchedulerTick)
	log := e.log.With("portal", id)
	st, rev, err := e.d.Runs.State(ctx, id)
	if err != nil {
		log.Warn("reading the portal's sync state failed", "err", err)
		return retry
	}
	if st.LastSlot.IsZero() {
		// First sight: the schedule starts now (another replica may have written it first).
		st.LastSlot = now
		if _, err := e.d.Runs.SetState(ctx, id, st, rev); err != nil && !errors.Is(err, store.ErrConflict) {
			log.Warn("initialising the portal's sync state failed", "err", err)
			return retry
		}
		if slot, err := cfg.ScoreSync.NextRun(now); err == nil && !slot.IsZero() {
			return slot
		}
		return retry
	}
	slot, err := cfg.ScoreSync.NextRun(st.LastSlot)
	if err != nil || slot.IsZero() {
		log.Warn("score_sync.schedule has no next run", "schedule", cfg.ScoreSync.Schedule, "err", err)
		return now.Add(time.Hour)
	}
	dueSlot := !slot.After(now)
	dueResume := !st.ResumeAt.IsZero() && !st.ResumeAt.After(now)
	log.Debug("schedule checked", "last_slot", st.LastSlot, "next_slot", slot, "resume_at", st.ResumeAt, "now", now)
	if !dueSlot && !dueResume {
		if !st.ResumeAt.IsZero() && st.ResumeAt.Before(slot) {
			return st.ResumeAt
		}
		return slot
	}
	latest := slot
	if dueSlot {
		for range 100_000 { // catch up missed slots with one run
			n, err := cfg.ScoreSync.NextRun(latest)
			if err != nil || n.IsZero() || n.After(now) {
				break
			}
			latest = n
		}
	}
	trigger := "schedule"
	if !dueSlot {
		trigger = "resume"
	}
	claim := func(ctx context.Context) error {
		claimed := st
		if dueSlot {
			claimed.LastSlot = latest
		}
		claimed.ResumeAt = time.Time{}
		_, err := e.d.Runs.SetState(ctx, id, claimed, rev)
		return err
	}
	run, err := e.start(ctx, id, cfg, scoresyncv1.SyncMode_SYNC_MODE_UNSPECIFIED, trigger, claim)
	switch {
	case err == nil:
		log.Info("scheduled run started", "run_id", run.GetRunId(), "slot", latest, "trigger", trigger)
	case errors.Is(err, store.ErrLocked), errors.Is(err, store.ErrConflict), errors.Is(err, ErrBusy):
		// Running elsewhere, another replica claimed the slot, or this replica is full (another
		// one, or this one after a run, takes it): look again soon.
		log.Debug("scheduled run not started", "err", err)
	default:
		log.Warn("starting the scheduled run failed", "err", err)
	}
	return retry
}

// recheckEvery bounds how long the scheduler trusts what it last read of a portal's state.
const recheckEvery = time.Minute

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (e *Engine) sweep(ctx context.Context) {
	for _, t := range []*store.Table{e.d.Scores, e.d.Sent} {
		n, err := t.Sweep(ctx, time.Hour)
		if err != nil {
			e.log.Warn("sweeping orphaned parts failed", "err", err)
			continue
		}
		if n > 0 {
			e.log.Info("orphaned parts deleted", "count", n)
		}
	}
}
