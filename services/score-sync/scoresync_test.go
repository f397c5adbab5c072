package scoresync_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	scoresyncv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scoresync/v1"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/portal"
	scoresync "github.com/signalbridge/signalbridge/services/score-sync"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

const (
	full  = scoresyncv1.SyncMode_SYNC_MODE_FULL
	delta = scoresyncv1.SyncMode_SYNC_MODE_DELTA
	auto  = scoresyncv1.SyncMode_SYNC_MODE_UNSPECIFIED

	succeeded = scoresyncv1.RunState_RUN_STATE_SUCCEEDED
	partial   = scoresyncv1.RunState_RUN_STATE_PARTIAL
	failed    = scoresyncv1.RunState_RUN_STATE_FAILED
	paused    = scoresyncv1.RunState_RUN_STATE_PAUSED
)

const batchRoute = "POST /crm/v3/objects/{objectType}/batch/update"

func postCount(s hubspottest.Stats, prefix string) int {
	n := 0
	for route, c := range s.Requests {
		if strings.HasPrefix(route, "POST "+prefix) {
			n += c
		}
	}
	return n
}

func TestFullThenDeltaSendsOnlyTheChanges(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	p := h.addPortal(t, 60, "", hubspottest.PortalOptions{})
	svc := h.start(t, instanceOptions{})
	t0 := h.clock.Now().Add(-time.Hour)

	want, batch := p.scoreAll(60, 0, t0)
	// Three accounts HubSpot has no company for, and two more accounts of companies 0 and 1
	// (scored earlier than the companies' own accounts, so those win).
	for i := range 3 {
		batch = append(batch, scoreFor(fmt.Sprintf("unknown%d.example.org", i), i, 0, t0))
	}
	h.mapping.Set(p.id, "alias-a.example.org", p.companies[0])
	h.mapping.Set(p.id, "alias-b.example.org", p.companies[1])
	batch = append(batch, scoreFor("alias-a.example.org", 100, 0, t0.Add(-time.Minute)), scoreFor("alias-b.example.org", 101, 0, t0.Add(-time.Minute)))
	h.publish(t, p.id, batch...)

	run1 := svc.sync(t, p.id, auto)
	if run1.GetMode() != full || run1.GetState() != succeeded || run1.GetAccountsConsidered() != 65 || run1.GetAccountsUnmatched() != 3 ||
		run1.GetAccountsSent() != 60 || run1.GetAccountsConfirmed() != 60 || run1.GetAccountsFailed() != 0 || run1.GetAccountsChanged() != 60 {
		t.Fatalf("first run: %s", summary(run1))
	}
	// setup (2 reads, group and property creation) + one batch of 60.
	if run1.GetHubspotCalls() != 5 || !strings.Contains(run1.GetMessage(), "NO_COMPANY 3") || !strings.Contains(run1.GetMessage(), "2 accounts share a company") {
		t.Fatalf("first run: %s", summary(run1))
	}
	p.checkValues(t, want)
	stats1 := p.sb.Stats()
	if stats1.BatchInputs[batchRoute] != 60 {
		t.Fatalf("batch inputs after the full run: %d", stats1.BatchInputs[batchRoute])
	}

	// Five accounts change, three are re-scored with the same values, one old score arrives late.
	t1 := t0.Add(30 * time.Minute)
	var updates []score
	for _, i := range []int{3, 17, 18, 40, 59} {
		want[i] = scoreFor(p.domain(i), i, 1, t1)
		updates = append(updates, want[i])
	}
	for _, i := range []int{5, 6, 7} {
		s := want[i]
		s.at = t1
		updates = append(updates, s)
	}
	updates = append(updates, scoreFor(p.domain(9), 9, 7, t0.Add(-2*time.Hour)))
	h.publish(t, p.id, updates...)

	run2 := svc.sync(t, p.id, auto)
	if run2.GetMode() != delta || run2.GetState() != succeeded || run2.GetAccountsChanged() != 5 || run2.GetAccountsSent() != 5 ||
		run2.GetAccountsConfirmed() != 5 || run2.GetHubspotCalls() != 3 {
		t.Fatalf("delta run: %s", summary(run2))
	}
	p.checkValues(t, want)
	stats2 := p.sb.Stats()
	if got := stats2.BatchInputs[batchRoute] - stats1.BatchInputs[batchRoute]; got != 5 {
		t.Fatalf("the delta run wrote %d records, want 5", got)
	}
	if got := postCount(stats2, "/crm/v3/properties") - postCount(stats1, "/crm/v3/properties"); got != 0 {
		t.Fatalf("setup of the second run created %d things", got)
	}

	run3 := svc.sync(t, p.id, auto)
	if run3.GetMode() != delta || run3.GetState() != succeeded || run3.GetAccountsSent() != 0 || run3.GetHubspotCalls() != 2 {
		t.Fatalf("delta run without changes: %s", summary(run3))
	}
	run4 := svc.sync(t, p.id, full)
	if run4.GetMode() != full || run4.GetState() != succeeded || run4.GetAccountsSent() != 60 || run4.GetAccountsChanged() != 0 {
		t.Fatalf("forced full run: %s", summary(run4))
	}

	res, err := svc.client.ListRuns(t.Context(), &scoresyncv1.ListRunsRequest{PortalId: p.id, PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetRuns()) != 3 || res.GetRuns()[0].GetRunId() != run4.GetRunId() || res.GetRuns()[2].GetRunId() != run2.GetRunId() || res.GetNextPageToken() == "" {
		t.Fatalf("list runs: %v next %q", res.GetRuns(), res.GetNextPageToken())
	}
	res, err = svc.client.ListRuns(t.Context(), &scoresyncv1.ListRunsRequest{PortalId: p.id, PageToken: res.GetNextPageToken()})
	if err != nil || len(res.GetRuns()) != 1 || res.GetRuns()[0].GetRunId() != run1.GetRunId() || res.GetNextPageToken() != "" {
		t.Fatalf("second page: %v %v", res.GetRuns(), err)
	}
	if run1.GetFinishedAt() == nil || run1.GetTrigger() != "manual" {
		t.Fatalf("record: %v", run1)
	}
}

func TestRPCErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	p := h.addPortal(t, 1, "", hubspottest.PortalOptions{})
	disabled := h.addPortal(t, 1, "", hubspottest.PortalOptions{})
	cfg, _ := h.portals.Get(disabled.id)
	off := *cfg
	off.ScoreSync.Enabled = false
	if err := h.pstore.Put(t.Context(), &off); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "disabled config", func() bool { c, _ := h.portals.Get(disabled.id); return !c.ScoreSync.Enabled })
	svc := h.start(t, instanceOptions{})
	ctx := t.Context()
	cases := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"unknown portal", func() error {
			_, err := svc.client.TriggerSync(ctx, &scoresyncv1.TriggerSyncRequest{PortalId: "424242"})
			return err
		}, codes.NotFound},
		{"disabled portal", func() error {
			_, err := svc.client.TriggerSync(ctx, &scoresyncv1.TriggerSyncRequest{PortalId: disabled.id})
			return err
		}, codes.FailedPrecondition},
		{"bad portal id", func() error {
			_, err := svc.client.TriggerSync(ctx, &scoresyncv1.TriggerSyncRequest{PortalId: "a.b"})
			return err
		}, codes.InvalidArgument},
		{"unknown mode", func() error {
			_, err := svc.client.TriggerSync(ctx, &scoresyncv1.TriggerSyncRequest{PortalId: p.id, Mode: 9})
			return err
		}, codes.InvalidArgument},
		{"unknown run", func() error {
			_, err := svc.client.GetRun(ctx, &scoresyncv1.GetRunRequest{PortalId: p.id, RunId: "nope"})
			return err
		}, codes.NotFound},
		{"negative page size", func() error {
			_, err := svc.client.ListRuns(ctx, &scoresyncv1.ListRunsRequest{PortalId: p.id, PageSize: -1})
			return err
		}, codes.InvalidArgument},
	}
	for _, tc := range cases {
		if got := status.Code(tc.call()); got != tc.want {
			t.Errorf("%s: code %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestBatchAndImportPathsGiveTheSameEndState(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	const n = 250
	viaBatch := h.addPortal(t, n, "  import_threshold: 1000000", hubspottest.PortalOptions{})
	viaImport := h.addPortal(t, n, "  import_threshold: 1", hubspottest.PortalOptions{})
	svc := h.start(t, instanceOptions{config: func(c *scoresync.Config) { c.ImportChunkRows = 100 }})
	t0 := h.clock.Now().Add(-time.Hour)
	want := map[int]score{}
	for _, p := range []*tportal{viaBatch, viaImport} {
		var batch []score
		for i := range n {
			batch = append(batch, scoreFor(p.domain(i), i, 0, t0))
		}
		h.publish(t, p.id, batch...)
	}
	for i := range n {
		want[i] = scoreFor("", i, 0, t0)
	}
	for round, changed := range [][]int{nil, {1, 2, 3, 50, 199, 249}} {
		t1 := t0.Add(time.Duration(round) * time.Minute)
		for _, p := range []*tportal{viaBatch, viaImport} {
			var upd []score
			for _, i := range changed {
				upd = append(upd, scoreFor(p.domain(i), i, round, t1))
			}
			if len(upd) > 0 {
				h.publish(t, p.id, upd...)
			}
		}
		for _, i := range changed {
			want[i] = scoreFor("", i, round, t1)
		}
		b := svc.sync(t, viaBatch.id, auto)
		im := svc.sync(t, viaImport.id, auto)
		wantSent := int64(n)
		wantImports := 3
		if round > 0 {
			wantSent, wantImports = int64(len(changed)), 1
		}
		for _, r := range []*scoresyncv1.SyncRun{b, im} {
			if r.GetState() != succeeded || r.GetAccountsSent() != wantSent || r.GetAccountsConfirmed() != wantSent {
				t.Fatalf("round %d: %s", round, summary(r))
			}
		}
		if len(b.GetImportIds()) != 0 || len(im.GetImportIds()) != wantImports {
			t.Fatalf("round %d: imports batch=%v import=%v", round, b.GetImportIds(), im.GetImportIds())
		}
		for i := range n {
			if a, c := viaBatch.values(t, i), viaImport.values(t, i); a != c || a != expected(want[i]) {
				t.Fatalf("round %d company %d: batch path %q, import path %q, want %q", round, i, a, c, expected(want[i]))
			}
		}
	}
	if s := viaImport.sb.Stats(); s.Imports != 4 || s.ImportRows != n+6 || s.BatchInputs[batchRoute] != 0 {
		t.Fatalf("import portal stats: imports %d rows %d batch inputs %d", s.Imports, s.ImportRows, s.BatchInputs[batchRoute])
	}
	if s := viaBatch.sb.Stats(); s.Imports != 0 || s.BatchInputs[batchRoute] != n+6 {
		t.Fatalf("batch portal stats: imports %d batch inputs %d", s.Imports, s.BatchInputs[batchRoute])
	}
}

func TestRowErrorsAreRecordedPerAccount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, threshold, reason string
	}{
		{"batch path", "1000000", "OBJECT_NOT_FOUND"},
		{"import path", "1", "INVALID_OBJECT_ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			p := h.addPortal(t, 20, "  import_threshold: "+tc.threshold, hubspottest.PortalOptions{})
			svc := h.start(t, instanceOptions{})
			t0 := h.clock.Now().Add(-time.Hour)
			var batch []score
			for i := range 20 {
				batch = append(batch, scoreFor(p.domain(i), i, 0, t0))
			}
			// The matcher still maps two domains to companies that were deleted in HubSpot.
			h.mapping.Set(p.id, "gone-1.example.org", "8800000001")
			h.mapping.Set(p.id, "gone-2.example.org", "8800000002")
			batch = append(batch, scoreFor("gone-1.example.org", 1, 0, t0), scoreFor("gone-2.example.org", 2, 0, t0))
			h.publish(t, p.id, batch...)
			run := svc.sync(t, p.id, auto)
			if run.GetState() != partial || run.GetAccountsSent() != 22 || run.GetAccountsConfirmed() != 20 || run.GetAccountsFailed() != 2 {
				t.Fatalf("%s", summary(run))
			}
			var got []string
			for _, f := range run.GetFailures() {
				if !strings.Contains(f.GetReason(), tc.reason) {
					t.Errorf("failure reason %q does not mention %s", f.GetReason(), tc.reason)
				}
				got = append(got, f.GetDomain()+"="+f.GetCompanyId())
			}
			slices.Sort(got)
			if strings.Join(got, " ") != "gone-1.example.org=8800000001 gone-2.example.org=8800000002" {
				t.Fatalf("failures %v", got)
			}
			// They stay unconfirmed, so the next run tries them again (and only them).
			again := svc.sync(t, p.id, auto)
			if again.GetAccountsSent() != 2 || again.GetAccountsFailed() != 2 || again.GetState() != partial {
				t.Fatalf("next run: %s", summary(again))
			}
		})
	}
}

func TestFailedImportChunkIsHealedByTheNextRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	const n = 250
	p := h.addPortal(t, n, "  import_threshold: 1", hubspottest.PortalOptions{})
	svc := h.start(t, instanceOptions{config: func(c *scoresync.Config) { c.ImportChunkRows = 100; c.ImportConcurrency = 1 }})
	t0 := h.clock.Now().Add(-time.Hour)
	want, batch := p.scoreAll(n, 0, t0)
	h.publish(t, p.id, batch...)
	// The first import upload fails (HubSpot answers 500; an upload is not retried).
	p.sb.Faults(hubspottest.Faults{Method: "POST", PathPrefix: "/crm/v3/imports", NextErrors: 1, ErrorStatus: 500})
	run1 := svc.sync(t, p.id, auto)
	if run1.GetState() != partial || run1.GetAccountsSent() != n || run1.GetAccountsFailed() != 100 || run1.GetAccountsConfirmed() != n-100 ||
		len(run1.GetImportIds()) != 2 {
		t.Fatalf("run with a failed chunk: %s", summary(run1))
	}
	if r := run1.GetFailures()[0].GetReason(); !strings.Contains(r, "could not start") {
		t.Fatalf("failure reason %q", r)
	}
	run2 := svc.sync(t, p.id, auto)
	if run2.GetMode() != delta || run2.GetState() != succeeded || run2.GetAccountsSent() != 100 || run2.GetAccountsConfirmed() != 100 {
		t.Fatalf("healing run: %s", summary(run2))
	}
	p.checkValues(t, want)
}

func TestCrashMidRunIsHealedByTheNextRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	const n = 600
	p := h.addPortal(t, n, "", hubspottest.PortalOptions{})
	first := h.start(t, instanceOptions{ownRedis: true, config: func(c *scoresync.Config) {
		c.BatchWorkers, c.ConfirmFlushRows = 1, 100
	}})
	t0 := h.clock.Now().Add(-time.Hour)
	want, batch := p.scoreAll(n, 0, t0)
	h.publish(t, p.id, batch...)
	p.sb.Faults(hubspottest.Faults{Latency: 100 * time.Millisecond, PathPrefix: "/crm/v3/objects/companies/batch/update"})

	run1 := first.trigger(t, p.id, auto)
	sent := h.sentTable(t)
	waitFor(t, "some confirmations stored", func() bool {
		m, _, err := sent.Manifest(t.Context(), p.id)
		return err == nil && m.Rows() >= 200
	})
	// The replica dies: nothing it does from now on reaches NATS or Redis.
	first.crashed = true
	first.nc.Close()
	_ = first.rdb.Close()
	first.stop(t)
	p.sb.Faults(hubspottest.Faults{})

	confirmed := 0
	if err := sent.Scan(t.Context(), p.id, func(store.Row) error { confirmed++; return nil }); err != nil {
		t.Fatal(err)
	}
	if confirmed >= n {
		t.Fatalf("the run finished (%d confirmed) before the crash", confirmed)
	}
	second := h.start(t, instanceOptions{})
	run2 := second.sync(t, p.id, auto)
	if run2.GetMode() != delta || run2.GetState() != succeeded || run2.GetAccountsSent() != int64(n-confirmed) {
		t.Fatalf("after a crash with %d confirmed: %s", confirmed, summary(run2))
	}
	p.checkValues(t, want)
	old, err := second.client.GetRun(t.Context(), &scoresyncv1.GetRunRequest{PortalId: p.id, RunId: run1.GetRunId()})
	if err != nil {
		t.Fatal(err)
	}
	if old.GetRun().GetState() != failed || !strings.Contains(old.GetRun().GetMessage(), "interrupted") {
		t.Fatalf("crashed run record: %s", summary(old.GetRun()))
	}
}

func TestTwoReplicasNeverRunAPortalAtOnce(t *testing.T) {
	t.Parallel()
	// One scheduled slot every 100 ms of real time.
	clk := newClock(time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC), 600)
	h := newHarness(t, clk)
	h.mapping.Latency = 3 * time.Millisecond
	p := h.addPortal(t, 100, `  schedule: "* * * * *"`, hubspottest.PortalOptions{})
	cfg := func(c *scoresync.Config) { c.MappingBatch, c.MappingWorkers = 10, 1 }
	a := h.start(t, instanceOptions{config: cfg})
	b := h.start(t, instanceOptions{config: cfg})
	var batch []score
	for i := range 100 {
		batch = append(batch, scoreFor(p.domain(i), i, 0, clk.Now().Add(-time.Hour)))
	}
	h.publish(t, p.id, batch...)

	// Manual triggers on both replicas race with both schedulers for a while.
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	accepted := map[string]int{}
	var mu sync.Mutex
	for name, in := range map[string]*instance{"a": a, "b": b} {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				_, err := in.client.TriggerSync(context.Background(), &scoresyncv1.TriggerSyncRequest{PortalId: p.id})
				switch status.Code(err) {
				case codes.OK:
					mu.Lock()
					accepted[name]++
					mu.Unlock()
				case codes.FailedPrecondition:
				default:
					t.Errorf("trigger on %s: %v", name, err)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	a.stop(t)
	b.stop(t)

	if peak := h.mapping.PeakConcurrency(p.id); peak != 1 {
		t.Fatalf("%d MappingService calls of the portal were in flight at once (one run uses one at a time)", peak)
	}
	runs := store.NewRuns(mustKV(t, h), 100)
	ids, err := runs.IDs(t.Context(), p.id)
	if err != nil {
		t.Fatal(err)
	}
	var list []*scoresyncv1.SyncRun
	triggers := map[string]int{}
	for _, id := range ids {
		r, err := runs.Get(t.Context(), p.id, id)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, r)
		triggers[r.GetTrigger()]++
	}
	if len(list) < 4 || triggers["schedule"] == 0 || triggers["manual"] == 0 {
		t.Fatalf("runs %d by trigger %v, accepted %v", len(list), triggers, accepted)
	}
	slices.SortFunc(list, func(x, y *scoresyncv1.SyncRun) int {
		return x.GetStartedAt().AsTime().Compare(y.GetStartedAt().AsTime())
	})
	for i := 1; i < len(list); i++ {
		prev, cur := list[i-1], list[i]
		if prev.GetFinishedAt() == nil {
			continue // interrupted by the shutdown at the end
		}
		if prev.GetFinishedAt().AsTime().After(cur.GetStartedAt().AsTime()) {
			t.Fatalf("run %s started before run %s finished", cur.GetRunId(), prev.GetRunId())
		}
	}
	t.Logf("%d runs (%v), none overlapping", len(list), triggers)
}

func TestDailyQuotaExhaustionPausesReportsAndResumes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		governor bool
	}{
		{"HubSpot answers 429 DAILY", false},
		{"the quota governor stops bulk calls", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock(time.Date(2026, 5, 5, 23, 0, 0, 0, time.UTC), 1)
			h := newHarness(t, clk)
			const n = 350
			opts := hubspottest.PortalOptions{Daily: 7} // setup takes 4 calls, then 3 batches of 100
			if tc.governor {
				opts.Daily = 8 // the governor stops bulk calls one short of it
			}
			p := h.addPortal(t, n, `  schedule: "0 2 * * *"`, opts)
			var gov *quota.Governor
			if tc.governor {
				var err error
				gov, err = quota.New(quota.Config{Redis: h.rdb, KeyPrefix: "sbtest:quota:" + p.id, Now: clk.Now, Logger: slog.New(slog.DiscardHandler),
					Portals: map[int64]quota.Limits{p.sb.ID(): {Burst: 1000, Daily: 8, DailyReserve: 1}}})
				if err != nil {
					t.Fatal(err)
				}
			}
			svc := h.start(t, instanceOptions{governor: gov, config: func(c *scoresync.Config) { c.BatchWorkers = 1 }})
			want := map[int]score{}
			var batch []score
			for i := range n {
				want[i] = scoreFor(p.domain(i), i, 0, clk.Now().Add(-time.Hour))
				batch = append(batch, want[i])
			}
			h.publish(t, p.id, batch...)

			run := svc.sync(t, p.id, auto)
			if run.GetState() != paused || run.GetAccountsConfirmed() != 300 || run.GetAccountsFailed() != 0 ||
				!strings.Contains(run.GetMessage(), "daily") || !strings.Contains(run.GetMessage(), "2026-05-06T00:00:00Z") ||
				!strings.Contains(run.GetMessage(), "50 companies are left") {
				t.Fatalf("exhausted run: %s", summary(run))
			}
			// After midnight the scheduler resumes with the 50 companies left.
			clk.Set(time.Date(2026, 5, 6, 0, 5, 0, 0, time.UTC))
			var resumed *scoresyncv1.SyncRun
			waitFor(t, "resumed run", func() bool {
				res, err := svc.client.ListRuns(t.Context(), &scoresyncv1.ListRunsRequest{PortalId: p.id})
				if err != nil || len(res.GetRuns()) < 2 {
					return false
				}
				resumed = res.GetRuns()[0]
				return resumed.GetState() != scoresyncv1.RunState_RUN_STATE_RUNNING
			})
			if resumed.GetTrigger() != "resume" || resumed.GetMode() != delta || resumed.GetState() != succeeded || resumed.GetAccountsSent() != 50 {
				t.Fatalf("resumed run: %s trigger %s", summary(resumed), resumed.GetTrigger())
			}
			p.checkValues(t, want)
		})
	}
}

func TestRunsThatCannotStartSendingFailWithTheReason(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	broken := h.addPortal(t, 5, "", hubspottest.PortalOptions{})
	incompatible := h.addPortal(t, 5, "", hubspottest.PortalOptions{})
	cfg, _ := h.portals.Get(incompatible.id)
	custom := *cfg
	custom.FieldMappings = []portal.FieldMapping{{Source: "account.intent_score",
		Targets: []portal.Target{{Object: portal.ObjectCompany, Property: "name", Strategy: portal.StrategyOverwrite}}}}
	if err := h.pstore.Put(t.Context(), &custom); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "custom mapping", func() bool { c, _ := h.portals.Get(incompatible.id); return len(c.FieldMappings) == 1 })
	h.mapping.Fail = func(portalID string) error {
		if portalID == broken.id {
			return status.Error(codes.Unavailable, "matcher is down")
		}
		return nil
	}
	svc := h.start(t, instanceOptions{})
	for _, p := range []*tportal{broken, incompatible} {
		var batch []score
		for i := range 5 {
			batch = append(batch, scoreFor(p.domain(i), i, 0, h.clock.Now().Add(-time.Hour)))
		}
		h.publish(t, p.id, batch...)
	}
	for _, tc := range []struct {
		p    *tportal
		want []string
	}{
		{broken, []string{"MappingService", "matcher is down"}},
		{incompatible, []string{`company property "name"`, "needs a number property"}},
	} {
		run := svc.sync(t, tc.p.id, auto)
		if run.GetState() != failed || run.GetAccountsSent() != 0 {
			t.Fatalf("%s", summary(run))
		}
		for _, w := range tc.want {
			if !strings.Contains(run.GetMessage(), w) {
				t.Errorf("message %q does not say %q", run.GetMessage(), w)
			}
		}
		if got := tc.p.sb.Stats().BatchInputs[batchRoute]; got != 0 {
			t.Errorf("%d records written", got)
		}
	}
}

func TestIntakePartsAreCompactedAndFullRunsComeBackWhenDue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	p := h.addPortal(t, 40, "", hubspottest.PortalOptions{})
	svc := h.start(t, instanceOptions{config: func(c *scoresync.Config) {
		c.IntakeBatch, c.IntakeLinger, c.CompactParts = 4, 5*time.Millisecond, 3
		c.FullEvery = time.Hour
	}})
	kv := mustKVBucket(t, h, "score-state")
	var batch []score
	for i := range 40 {
		batch = append(batch, scoreFor(p.domain(i), i, 0, h.clock.Now().Add(-time.Hour)))
	}
	h.publish(t, p.id, batch...)
	// Intake wrote parts of at most 4 scores; compaction folds them once 3 pile up.
	scores := store.NewTable(store.TableScores, kv, mustObj(t, h), nil)
	waitFor(t, "compaction", func() bool {
		m, _, err := scores.Manifest(t.Context(), p.id)
		return err == nil && len(m.Parts) < 3
	})
	n := 0
	if err := scores.Scan(t.Context(), p.id, func(store.Row) error { n++; return nil }); err != nil || n != 40 {
		t.Fatalf("after compaction the table has %d accounts (%v)", n, err)
	}
	if run := svc.sync(t, p.id, auto); run.GetMode() != full || run.GetAccountsSent() != 40 {
		t.Fatalf("first run: %s", summary(run))
	}
	if run := svc.sync(t, p.id, auto); run.GetMode() != delta || run.GetAccountsSent() != 0 {
		t.Fatalf("second run: %s", summary(run))
	}
	h.clock.Set(h.clock.Now().Add(61 * time.Minute))
	if run := svc.sync(t, p.id, auto); run.GetMode() != full || run.GetAccountsSent() != 40 || run.GetAccountsChanged() != 0 {
		t.Fatalf("run after FULL_EVERY: %s", summary(run))
	}
}

func TestAReplicaRunsAtMostMaxRunsAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	// Run A lasts at least 10 MappingService calls of 20 ms.
	h.mapping.Latency = 20 * time.Millisecond
	a := h.addPortal(t, 100, "", hubspottest.PortalOptions{})
	b := h.addPortal(t, 5, "", hubspottest.PortalOptions{})
	svc := h.start(t, instanceOptions{config: func(c *scoresync.Config) {
		c.MaxRuns, c.MappingBatch, c.MappingWorkers = 1, 10, 1
	}})
	t0 := h.clock.Now().Add(-time.Hour)
	for _, p := range []*tportal{a, b} {
		_, batch := p.scoreAll(len(p.companies), 0, t0)
		h.publish(t, p.id, batch...)
	}
	h.waitIntake(t)

	runA := svc.trigger(t, a.id, auto)
	_, err := svc.client.TriggerSync(t.Context(), &scoresyncv1.TriggerSyncRequest{PortalId: b.id})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "SB_SCORESYNC_MAX_RUNS") {
		t.Fatalf("second portal's trigger while a run goes: %v, want ResourceExhausted naming SB_SCORESYNC_MAX_RUNS", err)
	}
	if got := svc.wait(t, a.id, runA.GetRunId()); got.GetState() != succeeded {
		t.Fatalf("run A: %s", summary(got))
	}
	// Once A's slot is free, B runs.
	var runB *scoresyncv1.SyncRun
	waitFor(t, "B accepted after A", func() bool {
		res, err := svc.client.TriggerSync(t.Context(), &scoresyncv1.TriggerSyncRequest{PortalId: b.id})
		if status.Code(err) == codes.ResourceExhausted {
			return false // A's slot is released just after its record is written
		}
		if err != nil {
			t.Fatalf("trigger B: %v", err)
		}
		runB = res.GetRun()
		return true
	})
	if got := svc.wait(t, b.id, runB.GetRunId()); got.GetState() != succeeded || got.GetAccountsConfirmed() != 5 {
		t.Fatalf("run B: %s", summary(got))
	}
}
