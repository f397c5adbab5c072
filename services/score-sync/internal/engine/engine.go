// Package engine runs score-sync runs: property setup, the delta against what HubSpot last
// confirmed, sending (batch updates or CRM imports), run records, the schedule.
package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	mappingv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/mapping/v1"
	scoresyncv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scoresync/v1"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

// Errors of Trigger, besides store.ErrLocked.
var (
	ErrUnknownPortal = errors.New("unknown portal")
	ErrDisabled      = errors.New("score sync is disabled for the portal (score_sync.enabled is false)")
	// ErrBusy: this replica already runs Options.MaxRuns runs; another replica, or this one
	// later, takes the portal.
	ErrBusy = errors.New("this replica runs as many score syncs as it may at once")
)

// maxFailures bounds the failures listed in a run record (all are counted), and maxReasonLen
// the length of each reason.
const (
	maxFailures  = 1000
	maxReasonLen = 400
)

// Portals is the live portal configuration (*portal.Registry).
type Portals interface {
	Get(portalID string) (*portal.Config, bool)
	Portals() []string
}

// Options tune the engine. Zero values take the defaults in brackets.
type Options struct {
	// Replica names this process in lock values and logs [hostname-less "score-sync"].
	Replica string
	// LockTTL is the run lock's time to live; it is renewed every third of it [30s].
	LockTTL time.Duration
	// FullEvery forces a full run when the last full one is older (0: only the first run and
	// explicit requests are full).
	FullEvery time.Duration
	// Resolve tunes the MappingService calls.
	Resolve ResolveOptions
	// BatchWorkers is the number of batch update calls in flight [4].
	BatchWorkers int
	// ImportChunkRows [100,000], ImportConcurrency [2], ImportPollInterval [5s],
	// ImportPollMax [60s] and ImportTimeout [6h] tune the import path.
	ImportChunkRows    int
	ImportConcurrency  int
	ImportPollInterval time.Duration
	ImportPollMax      time.Duration
	ImportTimeout      time.Duration
	// FlushRows is how many confirmations are stored at once [5000].
	FlushRows int
	// CompactParts: the scores table is compacted when intake leaves this many parts [16].
	CompactParts int
	// SchedulerTick is how often the schedule is checked [30s].
	SchedulerTick time.Duration
	// SweepEvery is how often orphaned parts are deleted [1h].
	SweepEvery time.Duration
	// MaxRuns is how many runs (of different portals) this replica runs at once [2]. A run
	// holds its portal's changed rows in memory, so this bounds the replica's memory; portals
	// due meanwhile are taken by other replicas, or by this one once a run finishes.
	MaxRuns int
}

func (o *Options) defaults() {
	o.Replica = cmp.Or(o.Replica, "score-sync")
	o.LockTTL = cmp.Or(o.LockTTL, 30*time.Second)
	o.BatchWorkers = cmp.Or(o.BatchWorkers, 4)
	o.ImportChunkRows = cmp.Or(o.ImportChunkRows, 100_000)
	o.ImportConcurrency = cmp.Or(o.ImportConcurrency, 2)
	o.ImportPollInterval = cmp.Or(o.ImportPollInterval, 5*time.Second)
	o.ImportPollMax = cmp.Or(o.ImportPollMax, time.Minute)
	o.ImportTimeout = cmp.Or(o.ImportTimeout, 6*time.Hour)
	o.FlushRows = cmp.Or(o.FlushRows, 5000)
	o.CompactParts = cmp.Or(o.CompactParts, 16)
	o.SchedulerTick = cmp.Or(o.SchedulerTick, 30*time.Second)
	o.SweepEvery = cmp.Or(o.SweepEvery, time.Hour)
	o.MaxRuns = cmp.Or(o.MaxRuns, 2)
	o.Resolve.Batch = cmp.Or(o.Resolve.Batch, 1000)
	o.Resolve.Workers = cmp.Or(o.Resolve.Workers, 4)
	o.Resolve.Attempts = cmp.Or(o.Resolve.Attempts, 4)
}

// Deps are the engine's collaborators.
type Deps struct {
	Scores, Sent *store.Table
	Runs         *store.Runs
	Redis        redis.UniversalClient
	Portals      Portals
	HubSpot      func(portalID string) (*hubspot.Client, error)
	Mapping      mappingv1.MappingServiceClient
	Logger       *slog.Logger
	Meter        metric.MeterProvider
	Tracer       trace.TracerProvider
	Now          func() time.Time
}

// Engine starts and runs score-sync runs. It is safe for concurrent use.
type Engine struct {
	o      Options
	d      Deps
	log    *slog.Logger
	tracer trace.Tracer
	now    func() time.Time

	runsTotal  metric.Int64Counter
	records    metric.Int64Counter
	runSeconds metric.Float64Histogram

	base   context.Context // lives as long as the engine; runs derive from it
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slots  chan struct{} // one token per run in progress here, at most MaxRuns

	compacting   sync.Map // portal -> struct{}: a compaction is in flight in this process
	compactAgain sync.Map // portal -> struct{}: parts were added since it started
}

// New checks deps and returns an Engine.
func New(o Options, d Deps) (*Engine, error) {
	o.defaults()
	var missing []string
	for name, nil_ := range map[string]bool{"Scores": d.Scores == nil, "Sent": d.Sent == nil, "Runs": d.Runs == nil,
		"Redis": d.Redis == nil, "Portals": d.Portals == nil, "HubSpot": d.HubSpot == nil, "Mapping": d.Mapping == nil} {
		if nil_ {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("engine: missing deps: %s", strings.Join(missing, ", "))
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Meter == nil {
		d.Meter = otel.GetMeterProvider()
	}
	if d.Tracer == nil {
		d.Tracer = otel.GetTracerProvider()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	m := d.Meter.Meter("signalbridge/score-sync")
	e := &Engine{o: o, d: d, log: d.Logger, tracer: d.Tracer.Tracer("signalbridge/score-sync"), now: d.Now, slots: make(chan struct{}, o.MaxRuns)}
	var err error
	if e.runsTotal, err = m.Int64Counter("signalbridge.scoresync.runs", metric.WithDescription("finished runs by state and mode")); err != nil {
		return nil, err
	}
	if e.records, err = m.Int64Counter("signalbridge.scoresync.records", metric.WithDescription("companies written to HubSpot by outcome (confirmed, failed)")); err != nil {
		return nil, err
	}
	if e.runSeconds, err = m.Float64Histogram("signalbridge.scoresync.run.duration", metric.WithUnit("s"), metric.WithDescription("run duration")); err != nil {
		return nil, err
	}
	e.base, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

// Close interrupts the runs in progress (their records say so; the next run sends what they
// did not get confirmed) and waits for them to finish, or for ctx.
func (e *Engine) Close(ctx context.Context) error {
	e.cancel()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("engine: runs still finishing: %w", ctx.Err())
	}
}

// Wait blocks until no run started by this engine is in progress (tests, benchmarks).
func (e *Engine) Wait() { e.wg.Wait() }

// Trigger starts a run of the portal now and returns its record (state RUNNING). It fails
// with ErrUnknownPortal, ErrDisabled, an error wrapping store.ErrLocked while another run
// of the portal is in progress anywhere, or ErrBusy while this replica runs MaxRuns runs. mode UNSPECIFIED is full for a portal nothing was
// confirmed for yet (or when FullEvery is due), delta otherwise.
func (e *Engine) Trigger(ctx context.Context, portalID string, mode scoresyncv1.SyncMode, trigger string) (*scoresyncv1.SyncRun, error) {
	cfg, ok := e.d.Portals.Get(portalID)
	if !ok {
		return nil, fmt.Errorf("portal %s: %w", portalID, ErrUnknownPortal)
	}
	if !cfg.ScoreSync.Enabled {
		return nil, fmt.Errorf("portal %s: %w", portalID, ErrDisabled)
	}
	return e.start(ctx, portalID, cfg, mode, trigger, nil)
}

// start takes the portal's lock, runs claim (the scheduler's compare-and-set of its slot)
// under it, writes the RUNNING record and runs in the background.
func (e *Engine) start(ctx context.Context, portalID string, cfg *portal.Config, mode scoresyncv1.SyncMode,
	trigger string, claim func(context.Context) error) (*scoresyncv1.SyncRun, error) {
	now := e.now()
	runID := store.NewRunID(now)
	lock, err := store.Acquire(e.base, e.d.Redis, portalID, e.o.Replica+" run "+runID, e.o.LockTTL)
	if err != nil {
		return nil, err
	}
	// The slot is taken after the lock, so that a portal running elsewhere reads as locked.
	select {
	case e.slots <- struct{}{}:
	default:
		_ = lock.Release(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("portal %s: %w (SB_SCORESYNC_MAX_RUNS=%d)", portalID, ErrBusy, e.o.MaxRuns)
	}
	fail := func(err error) (*scoresyncv1.SyncRun, error) {
		_ = lock.Release(context.WithoutCancel(ctx))
		<-e.slots
		return nil, err
	}
	if claim != nil {
		if err := claim(ctx); err != nil {
			return fail(err)
		}
	}
	if mode == scoresyncv1.SyncMode_SYNC_MODE_UNSPECIFIED {
		if mode, err = e.autoMode(ctx, portalID, now); err != nil {
			return fail(err)
		}
	}
	rec := &scoresyncv1.SyncRun{
		RunId: runID, PortalId: portalID, Mode: mode, State: scoresyncv1.RunState_RUN_STATE_RUNNING,
		StartedAt: timestamppb.New(now), Trigger: trigger,
	}
	if err := e.d.Runs.Put(ctx, rec); err != nil {
		return fail(err)
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer func() { <-e.slots }()
		defer func() { _ = lock.Release(context.Background()) }()
		r := &runner{e: e, cfg: cfg, rec: proto.Clone(rec).(*scoresyncv1.SyncRun), lock: lock}
		r.run(lock.Context())
	}()
	return rec, nil
}

// autoMode is full when nothing was confirmed for the portal yet or a periodic full run is due.
func (e *Engine) autoMode(ctx context.Context, portalID string, now time.Time) (scoresyncv1.SyncMode, error) {
	m, _, err := e.d.Sent.Manifest(ctx, portalID)
	if err != nil {
		return 0, err
	}
	if len(m.Parts) == 0 {
		return scoresyncv1.SyncMode_SYNC_MODE_FULL, nil
	}
	if e.o.FullEvery > 0 {
		st, _, err := e.d.Runs.State(ctx, portalID)
		if err != nil {
			return 0, err
		}
		if st.LastFullAt.IsZero() || now.Sub(st.LastFullAt) >= e.o.FullEvery {
			return scoresyncv1.SyncMode_SYNC_MODE_FULL, nil
		}
	}
	return scoresyncv1.SyncMode_SYNC_MODE_DELTA, nil
}

// CompactScores folds the portal's intake parts into one, in the background, unless the
// portal is locked (a run compacts when it ends anyway). Intake calls it after each append;
// parts is how many the portal's manifest has. A call that finds a compaction running here
// asks it to go once more when it is done.
func (e *Engine) CompactScores(portalID string, parts int) {
	if parts < e.o.CompactParts {
		return
	}
	e.compactAgain.Store(portalID, struct{}{})
	if _, busy := e.compacting.LoadOrStore(portalID, struct{}{}); busy {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			e.compactAgain.Delete(portalID)
			e.compactOnce(portalID)
			e.compacting.Delete(portalID)
			if _, again := e.compactAgain.Load(portalID); !again {
				return
			}
			if _, busy := e.compacting.LoadOrStore(portalID, struct{}{}); busy {
				return
			}
		}
	}()
}

func (e *Engine) compactOnce(portalID string) {
	lock, err := store.Acquire(e.base, e.d.Redis, portalID, e.o.Replica+" compaction", e.o.LockTTL)
	if err != nil {
		return
	}
	defer func() { _ = lock.Release(context.Background()) }()
	rows, err := e.d.Scores.Compact(lock.Context(), portalID)
	if err != nil {
		e.log.Warn("compacting scores failed", "portal", portalID, "err", err)
		return
	}
	e.log.Debug("scores compacted", "portal", portalID, "accounts", rows)
}

// runner is one run in progress.
type runner struct {
	e    *Engine
	cfg  *portal.Config
	lock *store.Lock
	log  *slog.Logger

	mu       sync.Mutex
	rec      *scoresyncv1.SyncRun
	accts    *Accounts
	notes    []string
	lastSave time.Time

	calls     atomic.Int64
	confirmed atomic.Int64
	failed    atomic.Int64
}

func (r *runner) run(ctx context.Context) {
	e := r.e
	portalID := r.rec.GetPortalId()
	r.log = e.log.With("portal", portalID, "run_id", r.rec.GetRunId(), "mode", modeName(r.rec.GetMode()))
	ctx, span := e.tracer.Start(ctx, "score-sync run", trace.WithAttributes(
		attribute.String("signalbridge.portal_id", portalID), attribute.String("signalbridge.run_id", r.rec.GetRunId()),
		attribute.String("signalbridge.sync_mode", modeName(r.rec.GetMode()))))
	defer span.End()
	r.log.Info("score sync run started", "trigger", r.rec.GetTrigger())
	begin := time.Now()

	e.markInterrupted(ctx, portalID, r.rec.GetRunId())
	err := r.sync(ctx)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	r.finish(ctx, err, time.Since(begin))
	// Fold the parts intake wrote (and this run's confirmations) while the lock is still ours;
	// reading merges them anyway, so this only keeps the next run's reads short.
	if ctx.Err() == nil {
		for _, t := range []*store.Table{e.d.Scores, e.d.Sent} {
			if _, err := t.Compact(ctx, portalID); err != nil {
				r.log.Warn("compaction failed", "err", err)
			}
		}
	}
}

// sync does the work of a run; the outcome of every company is recorded as it happens.
func (r *runner) sync(ctx context.Context) error {
	e := r.e
	portalID := r.rec.GetPortalId()
	hs, err := e.d.HubSpot(portalID)
	if err != nil {
		return fmt.Errorf("hubspot client: %w", err)
	}
	setup, err := Setup(hubspot.WithClass(ctx, quota.Bulk), hs, r.cfg)
	r.calls.Add(int64(setup.Calls))
	if err != nil {
		return asPaused(fmt.Errorf("property setup: %w", err), e.now())
	}
	if setup.GroupCreated || len(setup.PropertiesCreated) > 0 {
		r.log.Info("score properties created", "group_created", setup.GroupCreated, "properties", setup.PropertiesCreated)
	}
	mapping := setup.Mapping

	accts, err := LoadAccounts(ctx, e.d.Scores, portalID)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.accts = accts
	r.rec.AccountsConsidered = int64(accts.Len())
	r.mu.Unlock()
	rs, err := accts.Resolve(ctx, e.d.Mapping, portalID, e.o.Resolve)
	if err != nil {
		return fmt.Errorf("resolve companies through the MappingService: %w", err)
	}
	sent, stale, err := LoadSent(ctx, e.d.Sent, portalID, mapping.Fingerprint)
	if err != nil {
		return err
	}
	full := r.rec.GetMode() == scoresyncv1.SyncMode_SYNC_MODE_FULL
	changes, ds := Diff(accts, sent, full)
	r.mu.Lock()
	r.rec.AccountsUnmatched = int64(ds.Unmatched)
	r.rec.AccountsChanged = int64(ds.Changed)
	r.rec.AccountsSent = int64(len(changes))
	if len(rs.ByReason) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(rs.ByReason)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, rs.ByReason[k]))
		}
		r.notes = append(r.notes, "unmatched accounts: "+strings.Join(parts, ", "))
	}
	if ds.Superseded > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%d accounts share a company with a more recently scored account and were not written", ds.Superseded))
	}
	if stale > 0 {
		r.notes = append(r.notes, fmt.Sprintf("the property mapping changed: %d companies confirmed under the old mapping are written again", stale))
	}
	r.mu.Unlock()
	r.log.Info("delta computed", "accounts", ds.Considered, "unmatched", ds.Unmatched, "companies", ds.Companies,
		"changed", ds.Changed, "to_send", len(changes), "mapping_calls", rs.Calls)
	r.save(ctx, true)
	if len(changes) == 0 {
		return nil
	}

	conf := &confirmer{table: e.d.Sent, portal: portalID, fingerprint: mapping.Fingerprint, flushRows: e.o.FlushRows,
		now: e.now, onFlush: func(int) { r.save(ctx, false) }}
	var flushErr atomic.Value
	snd := &sender{
		hs: hs, mapping: mapping, changes: changes, calls: &r.calls, now: e.now,
		confirm: func(c Change) {
			r.confirmed.Add(1)
			if err := conf.add(ctx, c); err != nil {
				flushErr.Store(err)
			}
		},
		fail:     r.fail,
		imported: r.imported,
	}
	var sendErr error
	if len(changes) >= r.cfg.ScoreSync.ImportThreshold {
		r.log.Info("sending through CRM imports", "rows", len(changes), "chunk_rows", e.o.ImportChunkRows)
		sendErr = snd.sendImports(ctx, importOptions{
			ChunkRows: e.o.ImportChunkRows, Concurrency: e.o.ImportConcurrency, PollInterval: e.o.ImportPollInterval,
			PollMax: e.o.ImportPollMax, Timeout: e.o.ImportTimeout, Name: "signalbridge-scores-" + r.rec.GetRunId(),
		})
	} else {
		r.log.Info("sending through batch updates", "rows", len(changes))
		sendErr = snd.sendBatches(ctx, batchOptions{Workers: e.o.BatchWorkers})
	}
	// Confirmations are stored even when the run was interrupted: HubSpot has those values.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := conf.flush(fctx)
		if err == nil {
			break
		}
		if attempt == 3 {
			r.note(fmt.Sprintf("%d confirmations could not be stored (%v); the next run writes those companies again", conf.unstored(), err))
			break
		}
		_ = sleepCtx(fctx, time.Duration(attempt)*500*time.Millisecond)
	}
	if v := flushErr.Load(); v != nil {
		r.log.Warn("storing confirmations failed at least once", "err", v)
	}
	return sendErr
}

func (r *runner) fail(c Change, reason string) {
	r.failed.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rec.Failures) < maxFailures {
		if len(reason) > maxReasonLen { // keeps the record well below the KV value limit
			reason = strings.ToValidUTF8(reason[:maxReasonLen], "") + "…"
		}
		r.rec.Failures = append(r.rec.Failures, &scoresyncv1.FailedAccount{
			Domain: r.accts.Domain(int(c.Account)), CompanyId: strconv.FormatUint(c.Company, 10), Reason: reason,
		})
	}
}

func (r *runner) imported(id string) {
	r.mu.Lock()
	r.rec.ImportIds = append(r.rec.ImportIds, id)
	r.mu.Unlock()
	r.log.Info("import started", "import_id", id)
	r.save(context.Background(), true)
}

func (r *runner) note(s string) {
	r.mu.Lock()
	r.notes = append(r.notes, s)
	r.mu.Unlock()
}

// save writes the record with the current counters: always when force, else at most every
// two seconds (progress for GetRun).
func (r *runner) save(ctx context.Context, force bool) {
	r.mu.Lock()
	if !force && time.Since(r.lastSave) < 2*time.Second {
		r.mu.Unlock()
		return
	}
	r.lastSave = time.Now()
	r.fillCounters()
	snapshot := proto.Clone(r.rec).(*scoresyncv1.SyncRun)
	r.mu.Unlock()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.e.d.Runs.Put(sctx, snapshot); err != nil {
		r.log.Warn("saving run progress failed", "err", err)
	}
}

// fillCounters copies the atomic counters into the record; r.mu is held.
func (r *runner) fillCounters() {
	r.rec.AccountsConfirmed = r.confirmed.Load()
	r.rec.AccountsFailed = r.failed.Load()
	r.rec.HubspotCalls = r.calls.Load()
}

// finish writes the final record, the portal state, logs and counts.
func (r *runner) finish(runCtx context.Context, err error, took time.Duration) {
	e := r.e
	ctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), 30*time.Second)
	defer cancel()
	r.mu.Lock()
	r.fillCounters()
	rec := r.rec
	rec.FinishedAt = timestamppb.New(e.now())
	var resumeAt time.Time
	var paused *pausedError
	switch {
	case errors.As(err, &paused):
		rec.State = scoresyncv1.RunState_RUN_STATE_PAUSED
		resumeAt = paused.until
		left := rec.GetAccountsSent() - rec.GetAccountsConfirmed() - rec.GetAccountsFailed()
		r.notes = append([]string{fmt.Sprintf("%s; %d companies are left for the resumed run", paused.Error(), max(left, 0))}, r.notes...)
	case err != nil:
		rec.State = scoresyncv1.RunState_RUN_STATE_FAILED
		reason := err.Error()
		if cause := context.Cause(runCtx); errors.Is(err, context.Canceled) && cause != nil {
			reason = cause.Error()
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, store.ErrLockLost) {
			reason = "interrupted (" + reason + "); the next run sends what was not confirmed"
		}
		r.notes = append([]string{reason}, r.notes...)
	case rec.GetAccountsFailed() > 0:
		rec.State = scoresyncv1.RunState_RUN_STATE_PARTIAL
		r.notes = append([]string{fmt.Sprintf("%d companies failed; the next run retries them", rec.GetAccountsFailed())}, r.notes...)
	default:
		rec.State = scoresyncv1.RunState_RUN_STATE_SUCCEEDED
	}
	rec.Message = strings.Join(r.notes, "; ")
	final := proto.Clone(rec).(*scoresyncv1.SyncRun)
	r.mu.Unlock()

	// The portal's state first: whoever sees the final record also sees ResumeAt.
	full := final.GetMode() == scoresyncv1.SyncMode_SYNC_MODE_FULL
	finished := final.GetState() == scoresyncv1.RunState_RUN_STATE_SUCCEEDED || final.GetState() == scoresyncv1.RunState_RUN_STATE_PARTIAL
	err = e.d.Runs.UpdateState(ctx, final.GetPortalId(), func(st *store.PortalState) {
		st.LastRunID = final.GetRunId()
		st.ResumeAt = resumeAt
		if full && finished {
			st.LastFullAt = final.GetStartedAt().AsTime()
		}
	})
	if err != nil {
		r.log.Warn("updating the portal's sync state failed", "err", err)
	}
	if err := e.d.Runs.Put(ctx, final); err != nil {
		r.log.Error("writing the run record failed", "err", err)
	}
	if err := e.d.Runs.Prune(ctx, final.GetPortalId()); err != nil {
		r.log.Warn("pruning old run records failed", "err", err)
	}
	attrs := metric.WithAttributes(attribute.String("state", stateName(final.GetState())), attribute.String("mode", modeName(final.GetMode())))
	e.runsTotal.Add(ctx, 1, attrs)
	e.runSeconds.Record(ctx, took.Seconds(), attrs)
	e.records.Add(ctx, final.GetAccountsConfirmed(), metric.WithAttributes(attribute.String("outcome", "confirmed")))
	e.records.Add(ctx, final.GetAccountsFailed(), metric.WithAttributes(attribute.String("outcome", "failed")))
	level := slog.LevelInfo
	if final.GetState() != scoresyncv1.RunState_RUN_STATE_SUCCEEDED {
		level = slog.LevelWarn
	}
	r.log.Log(ctx, level, "score sync run finished", "state", stateName(final.GetState()), "took", took.Round(time.Millisecond),
		"considered", final.GetAccountsConsidered(), "unmatched", final.GetAccountsUnmatched(), "changed", final.GetAccountsChanged(),
		"sent", final.GetAccountsSent(), "confirmed", final.GetAccountsConfirmed(), "failed", final.GetAccountsFailed(),
		"hubspot_calls", final.GetHubspotCalls(), "import_ids", final.GetImportIds(), "message", final.GetMessage())
}

// markInterrupted closes the records of earlier runs of the portal still marked RUNNING: the
// portal's lock is ours, so they are not running anywhere (their replica stopped).
func (e *Engine) markInterrupted(ctx context.Context, portalID, current string) {
	ids, err := e.d.Runs.IDs(ctx, portalID)
	if err != nil {
		return
	}
	for _, id := range ids[:min(len(ids), 20)] {
		if id == current {
			continue
		}
		run, err := e.d.Runs.Get(ctx, portalID, id)
		if err != nil || run.GetState() != scoresyncv1.RunState_RUN_STATE_RUNNING {
			continue
		}
		run.State = scoresyncv1.RunState_RUN_STATE_FAILED
		run.FinishedAt = timestamppb.New(e.now())
		run.Message = strings.TrimPrefix(run.GetMessage()+"; ", "; ") +
			"interrupted: the replica running it stopped before it finished; run " + current + " sends what was not confirmed"
		if err := e.d.Runs.Put(ctx, run); err == nil {
			e.log.Warn("run marked interrupted", "portal", portalID, "run_id", id, "by", current)
		}
	}
}

func modeName(m scoresyncv1.SyncMode) string {
	return strings.ToLower(strings.TrimPrefix(m.String(), "SYNC_MODE_"))
}

func stateName(s scoresyncv1.RunState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "RUN_STATE_"))
}
