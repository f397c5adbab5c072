package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	scoresv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scores/v1"
	scoresyncv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scoresync/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
	"github.com/signalbridge/signalbridge/libs/redisx/redistest"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

type buckets struct {
	kv, sync jetstream.KeyValue
	obj      jetstream.ObjectStore
}

func open(t *testing.T) buckets {
	t.Helper()
	ctx := t.Context()
	js := natstest.Run(t).JetStream(t)
	kv, err := js.KeyValue(ctx, natsx.BucketScoreState)
	if err != nil {
		t.Fatal(err)
	}
	syncKV, err := js.KeyValue(ctx, natsx.BucketSyncState)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "score-sync"})
	if err != nil {
		t.Fatal(err)
	}
	return buckets{kv: kv, sync: syncKV, obj: obj}
}

func row(key string, ver uint64, val string) store.Row {
	return store.Row{Key: []byte(key), Ver: ver, Val: []byte(val)}
}

func scan(t *testing.T, tab *store.Table, portal string) []string {
	t.Helper()
	var out []string
	err := tab.Scan(t.Context(), portal, func(r store.Row) error {
		out = append(out, fmt.Sprintf("%s@%d=%s", r.Key, r.Ver, r.Val))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTableMergesPartsNewestVersionWins(t *testing.T) {
	t.Parallel()
	b := open(t)
	tab := store.NewTable("scores", b.kv, b.obj, nil)
	ctx := t.Context()
	steps := [][]store.Row{
		{row("b.com", 5, "b5"), row("a.com", 1, "a1"), row("c.com", 9, "c9"), row("a.com", 3, "a3"), row("a.com", 2, "a2")},
		{row("a.com", 2, "a2-later-part-older"), row("d.com", 1, "d1"), row("b.com", 5, "b5-tie-later-part")},
		{row("c.com", 10, "c10")},
	}
	for i, rows := range steps {
		n, err := tab.Append(ctx, "42", rows)
		if err != nil {
			t.Fatal(err)
		}
		if n != i+1 {
			t.Fatalf("after append %d the manifest has %d parts", i, n)
		}
	}
	want := []string{"a.com@3=a3", "b.com@5=b5-tie-later-part", "c.com@10=c10", "d.com@1=d1"}
	if got := scan(t, tab, "42"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("scan = %v, want %v", got, want)
	}
	if got := scan(t, tab, "43"); len(got) != 0 {
		t.Fatalf("another portal sees %v", got)
	}

	rows, err := tab.Compact(ctx, "42")
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := tab.Manifest(ctx, "42")
	if err != nil {
		t.Fatal(err)
	}
	if rows != 4 || len(m.Parts) != 1 || m.Parts[0].Rows != 4 {
		t.Fatalf("compacted to %d rows, manifest %+v", rows, m)
	}
	if got := scan(t, tab, "42"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("after compaction scan = %v, want %v", got, want)
	}
	infos, err := b.obj.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Name != m.Parts[0].Object {
		t.Fatalf("old parts not deleted: %d objects", len(infos))
	}

	// A newer row appended after compaction still wins over the compacted part.
	if _, err := tab.Append(ctx, "42", []store.Row{row("a.com", 3, "a3-rewritten")}); err != nil {
		t.Fatal(err)
	}
	if got := scan(t, tab, "42"); got[0] != "a.com@3=a3-rewritten" {
		t.Fatalf("scan after append = %v", got)
	}

	kept, err := tab.Rewrite(ctx, "42", func(r store.Row) bool { return string(r.Key) != "c.com" })
	if err != nil {
		t.Fatal(err)
	}
	if got := scan(t, tab, "42"); kept != 3 || strings.Join(got, " ") != "a.com@3=a3-rewritten b.com@5=b5-tie-later-part d.com@1=d1" {
		t.Fatalf("rewrite kept %d: %v", kept, got)
	}
}

func TestTableScanStopsOnCallbackErrorAndCompactionKeepsConcurrentParts(t *testing.T) {
	t.Parallel()
	b := open(t)
	tab := store.NewTable("sent", b.kv, b.obj, nil)
	ctx := t.Context()
	for i := range 3 {
		if _, err := tab.Append(ctx, "7", []store.Row{row(fmt.Sprintf("k%d", i), 1, "v")}); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := tab.Scan(ctx, "7", func(store.Row) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("scan returned %v after %d calls", err, calls)
	}
	if _, err := tab.Compact(ctx, "7"); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Append(ctx, "7", []store.Row{row("k9", 1, "v")}); err != nil {
		t.Fatal(err)
	}
	if got := scan(t, tab, "7"); len(got) != 4 {
		t.Fatalf("scan = %v", got)
	}
	// Nothing is orphaned, so a sweep deletes nothing.
	if n, err := tab.Sweep(ctx, 0); err != nil || n != 0 {
		t.Fatalf("sweep deleted %d (%v)", n, err)
	}
	// An unreferenced object of the table is swept; other tables' objects are left alone.
	if _, err := b.obj.PutBytes(ctx, "sent/7/orphan", []byte("SBT1")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.obj.PutBytes(ctx, "scores/7/other", []byte("SBT1")); err != nil {
		t.Fatal(err)
	}
	if n, err := tab.Sweep(ctx, 0); err != nil || n != 1 {
		t.Fatalf("sweep deleted %d (%v), want 1", n, err)
	}
	if _, err := b.obj.GetInfo(ctx, "scores/7/other"); err != nil {
		t.Fatalf("other table's object: %v", err)
	}
}

func TestTableRejectsCorruptParts(t *testing.T) {
	t.Parallel()
	b := open(t)
	tab := store.NewTable("scores", b.kv, b.obj, nil)
	ctx := t.Context()
	if _, err := tab.Append(ctx, "9", []store.Row{row("a.com", 1, "x")}); err != nil {
		t.Fatal(err)
	}
	m, _, _ := tab.Manifest(ctx, "9")
	if _, err := b.obj.PutBytes(ctx, m.Parts[0].Object, []byte("SBT1\x05ab")); err != nil {
		t.Fatal(err)
	}
	err := tab.Scan(ctx, "9", func(store.Row) error { return nil })
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("scan of a truncated part: %v", err)
	}
	if _, err := b.obj.PutBytes(ctx, m.Parts[0].Object, []byte("NOPE")); err != nil {
		t.Fatal(err)
	}
	if err := tab.Scan(ctx, "9", func(store.Row) error { return nil }); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("scan of a part with a bad magic: %v", err)
	}
}

func TestScoreAndSentRowsRoundTrip(t *testing.T) {
	t.Parallel()
	v := store.Values{IntentScore: 7346, ICPFitScore: 10000, IntentStrength: scoresv1.IntentStrength_INTENT_STRENGTH_VERY_HIGH,
		IntentTrend: scoresv1.IntentTrend_INTENT_TREND_COOLING, ICPFitGrade: scoresv1.FitGrade_FIT_GRADE_NONE}
	if got := store.UnpackValues(v.Pack()); got != v {
		t.Fatalf("pack round trip: %+v", got)
	}
	at := time.UnixMilli(1_767_000_000_123)
	r, err := store.ScoreRow{Domain: "acme.com", Aliases: []string{"acme.io", "acme.de"}, ScoredAt: at, Values: v}.Row()
	if err != nil {
		t.Fatal(err)
	}
	packed, section, err := store.DecodeScoreValue(r.Val)
	if err != nil || packed != v.Pack() || r.Ver != uint64(at.UnixMilli()) {
		t.Fatalf("decode: %x %v", packed, err)
	}
	aliases, err := store.AliasList(section)
	if err != nil || strings.Join(aliases, ",") != "acme.io,acme.de" {
		t.Fatalf("aliases %v %v", aliases, err)
	}
	sent := store.SentRow{CompanyID: 1<<40 + 5, Fingerprint: 0xdeadbeef, Packed: v.Pack(), ConfirmedAt: at}
	back, err := store.DecodeSent(sent.Row())
	if err != nil || back.CompanyID != sent.CompanyID || back.Fingerprint != sent.Fingerprint || back.Packed != sent.Packed || !back.ConfirmedAt.Equal(at) {
		t.Fatalf("sent round trip: %+v %v", back, err)
	}

	for _, tc := range []struct {
		name  string
		score float64
		want  uint16
		bad   bool
	}{
		{"zero", 0, 0, false},
		{"rounds half up", 73.455, 7346, false},
		{"hundred", 100, 10000, false},
		{"negative", -0.01, 0, true},
		{"above", 100.01, 0, true},
	} {
		got, err := store.Hundredths(tc.score)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("%s: Hundredths(%v) = %d, %v", tc.name, tc.score, got, err)
		}
	}
}

func TestRunsListNewestFirstPagesAndPrunes(t *testing.T) {
	t.Parallel()
	b := open(t)
	runs := store.NewRuns(b.sync, 3)
	ctx := t.Context()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var ids []string
	for i := range 5 {
		id := store.NewRunID(base.Add(time.Duration(i) * time.Minute))
		ids = append(ids, id)
		if err := runs.Put(ctx, &scoresyncv1.SyncRun{RunId: id, PortalId: "5", AccountsSent: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := runs.Put(ctx, &scoresyncv1.SyncRun{RunId: ids[0], PortalId: "6"}); err != nil {
		t.Fatal(err)
	}
	page, next, err := runs.List(ctx, "5", 2, "")
	if err != nil || len(page) != 2 || page[0].GetRunId() != ids[4] || page[1].GetRunId() != ids[3] || next != ids[3] {
		t.Fatalf("page 1: %v next %q err %v", page, next, err)
	}
	page, next, err = runs.List(ctx, "5", 10, next)
	if err != nil || len(page) != 3 || page[0].GetRunId() != ids[2] || next != "" {
		t.Fatalf("page 2: %v next %q err %v", page, next, err)
	}
	if err := runs.Prune(ctx, "5"); err != nil {
		t.Fatal(err)
	}
	left, err := runs.IDs(ctx, "5")
	if err != nil || len(left) != 3 || left[2] != ids[2] {
		t.Fatalf("after prune: %v %v", left, err)
	}
	if _, err := runs.Get(ctx, "5", ids[0]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pruned run: %v", err)
	}
	if other, err := runs.IDs(ctx, "6"); err != nil || len(other) != 1 {
		t.Fatalf("portal 6 runs: %v %v", other, err)
	}

	st, rev, err := runs.State(ctx, "5")
	if err != nil || rev != 0 || !st.LastSlot.IsZero() {
		t.Fatalf("fresh state %+v rev %d %v", st, rev, err)
	}
	st.LastSlot = base
	rev, err = runs.SetState(ctx, "5", st, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runs.SetState(ctx, "5", st, 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := runs.SetState(ctx, "5", st, rev+7); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale revision: %v", err)
	}
	if err := runs.UpdateState(ctx, "5", func(s *store.PortalState) { s.LastRunID = "x" }); err != nil {
		t.Fatal(err)
	}
	st, _, _ = runs.State(ctx, "5")
	if st.LastRunID != "x" || !st.LastSlot.Equal(base) {
		t.Fatalf("state %+v", st)
	}
}

func TestLockIsExclusiveExpiresAndReportsLoss(t *testing.T) {
	t.Parallel()
	rdb := redistest.TestClient(t)
	portal := redistest.Portal(t, rdb)
	ctx := t.Context()
	a, err := store.Acquire(ctx, rdb, portal, "replica-a", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Acquire(ctx, rdb, portal, "replica-b", time.Second)
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "replica-a") {
		t.Fatalf("second acquire: %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Context().Err() == nil {
		t.Fatal("released lock's context is still live")
	}
	b, err := store.Acquire(ctx, rdb, portal, "replica-b", 300*time.Millisecond)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	// Someone else takes the key over (as after an expiry): the holder notices and stops.
	if err := rdb.Set(ctx, store.LockKey(portal), "intruder#x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("lock loss not noticed")
	}
	if cause := context.Cause(b.Context()); !errors.Is(cause, store.ErrLockLost) {
		t.Fatalf("cause %v", cause)
	}
	// Releasing a lost lock leaves the new holder's key alone.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := rdb.Get(ctx, store.LockKey(portal)).Result(); v != "intruder#x" {
		t.Fatalf("key is %q after releasing a lost lock", v)
	}
}
