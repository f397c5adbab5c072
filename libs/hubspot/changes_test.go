package hubspot_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
)

// fakeClock is a settable clock shared by the sandbox and the feed.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// drain runs a feed to the end and returns the delivered records by id with
// their delivery counts, failing on errors.
func drain(t *testing.T, ch *hubspot.Changes) map[string]int {
	t.Helper()
	got := map[string]int{}
	for o, err := range ch.All(testCtx(t)) {
		if err != nil {
			t.Fatalf("changes: %v", err)
		}
		got[o.ID]++
	}
	return got
}

func seedStamped(p *hubspottest.Portal, n int, modified func(i int) time.Time) []string {
	recs := make([]map[string]string, n)
	for i := range recs {
		recs[i] = map[string]string{"name": fmt.Sprintf("co-%d", i), "hs_lastmodifieddate": strconv.FormatInt(modified(i).UnixMilli(), 10)}
	}
	return p.SeedCompanies(recs...)
}

func TestChanges_PastTheSearchCap(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{DisableRateLimits: true}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, nil)
	base := time.Now().Add(-48 * time.Hour)
	ids := seedStamped(p, 10_500, func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) })

	// Offset paging of one query dies at the 10,000-result cap.
	n := 0
	var capErr error
	for _, err := range c.SearchAll(testCtx(t), hubspot.Companies, hubspot.SearchRequest{
		Limit: 200, Sorts: []hubspot.Sort{{PropertyName: "hs_lastmodifieddate", Direction: hubspot.Ascending}},
	}) {
		if err != nil {
			capErr = err
			break
		}
		n++
	}
	if capErr == nil || n != 10_000 {
		t.Fatalf("SearchAll read %d records and ended with %v; want the cap error after 10,000", n, capErr)
	}

	ch, err := c.Changes(hubspot.Companies, hubspot.ChangesOptions{Since: base})
	if err != nil {
		t.Fatal(err)
	}
	got := drain(t, ch)
	if len(got) != len(ids) {
		t.Fatalf("delivered %d records, want %d", len(got), len(ids))
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("record %s delivered %d times", id, got[id])
		}
	}
	if st := ch.Stats(); st.TieScans != 0 || st.Queries > 60 {
		t.Fatalf("stats %+v: want ~53 keyset queries and no tie scan", st)
	}
}

func TestChanges_IdenticalTimestampStorm(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	srv, p := sandbox(t, hubspottest.Options{DisableRateLimits: true, Clock: clk.Now}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, nil)

	before := seedStamped(p, 150, func(i int) time.Time { return clk.Now().Add(-time.Hour + time.Duration(i)*time.Second) })
	storm := seedStamped(p, 12_000, func(int) time.Time { return clk.Now().Add(-2 * time.Hour) })
	clk.Advance(time.Minute)
	// A bulk edit stamps all 12,000 with ONE timestamp.
	if err := p.BulkEdit("companies", storm, map[string]string{"industry": "COMPUTER_SOFTWARE"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	after := seedStamped(p, 120, func(i int) time.Time { return clk.Now().Add(time.Duration(i) * time.Millisecond) })
	clk.Advance(time.Hour) // everything is older than the index lag

	ch, err := c.Changes(hubspot.Companies, hubspot.ChangesOptions{Since: clk.Now().Add(-5 * time.Hour), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	got := drain(t, ch)
	want := len(before) + len(storm) + len(after)
	if len(got) != want {
		t.Fatalf("delivered %d distinct records, want %d", len(got), want)
	}
	for id, n := range got {
		if n != 1 {
			t.Fatalf("record %s delivered %d times", id, n)
		}
	}
	st := ch.Stats()
	if st.TieScans != 1 || st.Delivered != want {
		t.Fatalf("stats %+v, want one tie scan and %d deliveries", st, want)
	}
	// The cursor is past everything: a new run delivers nothing.
	cur := ch.Cursor()
	if cur.Since.Before(clk.Now().Add(-time.Hour - 10*time.Minute)) {
		t.Fatalf("cursor since %v is too far back", cur.Since)
	}
	again, err := c.Changes(hubspot.Companies, hubspot.ChangesOptions{Cursor: &cur, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if more := drain(t, again); len(more) != 0 {
		t.Fatalf("a caught-up cursor delivered %d records", len(more))
	}
}

func TestChanges_ResumeInsideATieScan(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	srv, p := sandbox(t, hubspottest.Options{DisableRateLimits: true, Clock: clk.Now}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, nil)
	stamp := clk.Now().Add(-3 * time.Hour)
	ids := seedStamped(p, 1_000, func(int) time.Time { return stamp })
	seedStamped(p, 30, func(i int) time.Time { return stamp.Add(time.Duration(i+1) * time.Second) })

	opts := hubspot.ChangesOptions{Since: stamp.Add(-time.Minute), PageSize: 50, Now: clk.Now}
	ch, err := c.Changes(hubspot.Companies, opts)
	if err != nil {
		t.Fatal(err)
	}
	delivered := map[string]int{}
	for o, err := range ch.All(testCtx(t)) {
		if err != nil {
			t.Fatal(err)
		}
		delivered[o.ID]++
		if len(delivered) == 130 {
			break // the consumer stops (or crashes) mid-storm
		}
	}
	cur := ch.Cursor()
	if cur.TieID == "" || !cur.Since.Equal(stamp.Truncate(time.Millisecond)) {
		t.Fatalf("cursor %+v: want a tie position at %v", cur, stamp)
	}
	raw, err := json.Marshal(cur)
	if err != nil {
		t.Fatal(err)
	}
	var restored hubspot.Cursor
	if err := json.Unmarshal(raw, &restored); err != nil {
		t.Fatal(err)
	}
	resumed, err := c.Changes(hubspot.Companies, hubspot.ChangesOptions{Cursor: &restored, PageSize: 50, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range drain(t, resumed) {
		delivered[id] += n
	}
	if len(delivered) != 1_030 {
		t.Fatalf("delivered %d distinct records over both runs, want 1030", len(delivered))
	}
	for id, n := range delivered {
		if n != 1 {
			t.Fatalf("record %s delivered %d times across the resume", id, n)
		}
	}
	if _, ok := delivered[ids[999]]; !ok {
		t.Fatal("the last record of the storm is missing")
	}
	// 870 records left at 50 a page: 18 tie pages and one main query, and
	// nothing delivered before the stop comes back.
	if st := resumed.Stats(); st.Duplicates != 0 || st.Queries > 20 {
		t.Fatalf("resume re-read the storm: %+v", st)
	}
}

func TestChanges_IndexLagAndOverlap(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	srv, p := sandbox(t, hubspottest.Options{DisableRateLimits: true, Clock: clk.Now, SearchIndexLag: time.Minute}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, nil)
	ctx := testCtx(t)
	t0 := clk.Now()
	old := seedStamped(p, 3, func(i int) time.Time { return t0.Add(-time.Hour + time.Duration(i)*time.Second) })

	var created []string
	for i := range 5 {
		o, err := c.Create(ctx, hubspot.Companies, hubspot.CreateInput{Properties: map[string]string{"name": fmt.Sprintf("new-%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, o.ID)
	}
	run := func(cur *hubspot.Cursor) (map[string]int, hubspot.Cursor) {
		t.Helper()
		opts := hubspot.ChangesOptions{Cursor: cur, IndexLag: 2 * time.Minute, Now: clk.Now}
		if cur == nil {
			opts.Since = t0.Add(-2 * time.Hour)
		}
		ch, err := c.Changes(hubspot.Companies, opts)
		if err != nil {
			t.Fatal(err)
		}
		got := drain(t, ch)
		cursor := ch.Cursor()
		// Persist and restore like a real sync would.
		raw, _ := json.Marshal(cursor)
		var back hubspot.Cursor
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		return got, back
	}
	total := map[string]int{}
	add := func(m map[string]int) {
		for id, n := range m {
			total[id] += n
		}
	}

	clk.Advance(10 * time.Second) // the 5 new records are not searchable yet
	got, cur := run(nil)
	if len(got) != len(old) {
		t.Fatalf("run 1 delivered %v, want only the %d old records", got, len(old))
	}
	add(got)

	clk.Advance(time.Minute) // now they are
	got, cur = run(&cur)
	for _, id := range created {
		if got[id] != 1 {
			t.Fatalf("run 2 delivered %v, want each new record once", got)
		}
	}
	if len(got) != len(created) {
		t.Fatalf("run 2 re-delivered old records: %v", got)
	}
	add(got)

	// Two records change; the index lags behind the change.
	clk.Advance(time.Second)
	for _, id := range created[:2] {
		if _, err := c.Update(ctx, hubspot.Companies, id, "", map[string]string{"city": "Porto"}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(10 * time.Second)
	got, cur = run(&cur)
	if len(got) != 0 {
		t.Fatalf("run 3 (changes not indexed yet) delivered %v; the overlap must not repeat old versions", got)
	}
	clk.Advance(2 * time.Minute)
	got, _ = run(&cur)
	if len(got) != 2 || got[created[0]] != 1 || got[created[1]] != 1 {
		t.Fatalf("run 4 delivered %v, want the 2 changed records", got)
	}
	add(got)
	if len(total) != len(old)+len(created) {
		t.Fatalf("over all runs: %v", total)
	}
}

func TestChanges_ConcurrentEdits(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{DisableRateLimits: true}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, nil)
	base := time.Now().Add(-time.Hour)
	ids := seedStamped(p, 600, func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) })

	ch, err := c.Changes(hubspot.Companies, hubspot.ChangesOptions{Since: base, PageSize: 100, IndexLag: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]string{} // id -> last delivered modified date
	edited := false
	for o, err := range ch.All(testCtx(t)) {
		if err != nil {
			t.Fatal(err)
		}
		last[o.ID] = o.Properties["hs_lastmodifieddate"]
		if len(last) == 150 && !edited {
			// While the feed pages, records ahead of it and behind it change:
			// with offset paging the ones ahead would shift and be skipped.
			edited = true
			for _, id := range []string{ids[10], ids[300], ids[301], ids[599]} {
				if err := p.UIEdit("companies", id, map[string]string{"city": "Bern"}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if len(last) != len(ids) {
		t.Fatalf("delivered %d distinct records, want %d", len(last), len(ids))
	}
	for _, id := range []string{ids[10], ids[300], ids[301], ids[599]} {
		props, _ := p.Object("companies", id)
		if last[id] != props["hs_lastmodifieddate"] {
			t.Fatalf("record %s: last delivered version %s, current %s", id, last[id], props["hs_lastmodifieddate"])
		}
	}
}

func TestChanges_Validation(t *testing.T) {
	t.Parallel()
	c, err := hubspot.New(hubspot.Config{Auth: hubspot.BearerToken("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Changes(hubspot.Companies, hubspot.ChangesOptions{PageSize: 201}); err == nil {
		t.Error("PageSize 201 accepted")
	}
	if _, err := c.Changes(hubspot.Companies, hubspot.ChangesOptions{Cursor: &hubspot.Cursor{TieID: "abc"}}); err == nil {
		t.Error("non-numeric TieID accepted")
	}
	if _, err := c.Changes("", hubspot.ChangesOptions{}); err == nil {
		t.Error("empty object type accepted")
	}
}
