package hubspot

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strconv"
	"time"
)

// Changes reads the records of one type modified since a point in time,
// through the search API, without the two traps of naive paging:
//
//   - One search query reaches at most 10,000 results, and its offset cursor
//     skips records when others are modified while it pages (they move to the
//     end of the sort order and shift every offset).
//   - Many records can share one last-modified timestamp (a bulk edit stamps
//     thousands with the same millisecond), so "restart from the last
//     timestamp" can loop forever or skip records.
//
// It therefore never uses the offset cursor. Each query is a keyset query:
//
//   - main scan: modified ≥ T (or > T), sorted by modified ascending, one
//     page. Every record on the page older than the page's last timestamp L
//     has been seen, so the next query starts at ≥ L; the records at L come
//     back and are skipped as already seen.
//   - tie scan: when a full page holds a single timestamp T, the records at T
//     are read with modified = T and hs_object_id > last id, sorted by
//     hs_object_id ascending (search allows one sort), page after page, until
//     a short page; then the main scan resumes with modified > T.
//
// Search is eventually consistent: a record modified at t may only become
// searchable some time later (IndexLag). The Cursor therefore never moves
// past the start of the run minus IndexLag; the next run re-reads that
// overlap and Cursor.Seen (id → modified) drops what was already delivered.
// Delivery is at least once: a record modified again is delivered again, and
// when Seen outgrows MaxSeen the oldest entries are dropped, which can only
// cause duplicates, never gaps.
//
// A Changes value is not safe for concurrent use.
type Changes struct {
	c     *Client
	t     ObjectType
	opts  ChangesOptions
	props []string
	mod   string // modified property name

	runStart time.Time
	low      int64 // lower bound of the main scan, epoch ms
	lowDone  bool  // every record at low was delivered: scan with GT
	tie      *tieScan
	seen     map[string]int64
	stats    ChangesStats
}

type tieScan struct {
	ts      int64
	afterID string
}

// ChangesOptions configure Client.Changes.
type ChangesOptions struct {
	// Properties to return besides the modified date and hs_object_id.
	Properties []string
	// Since is where a first run starts (inclusive). Ignored with Cursor.
	Since time.Time
	// Cursor resumes a previous run (see Changes.Cursor).
	Cursor *Cursor
	// IndexLag is the longest time a write may take to become searchable;
	// default 5 minutes. It also absorbs clock skew between this host and
	// HubSpot.
	IndexLag time.Duration
	// PageSize is the search page size, ≤ 200 (default 200).
	PageSize int
	// MaxSeen bounds Cursor.Seen (default 100,000 ids).
	MaxSeen int
	// Now is the clock; default the client's.
	Now func() time.Time
}

// Cursor is the resumable position of a change feed. Persist it after
// processing the records delivered so far; JSON-encodable.
type Cursor struct {
	// Since is the lower bound of the next scan (millisecond precision).
	Since time.Time `json:"since"`
	// SinceDone says every record modified exactly at Since was delivered.
	SinceDone bool `json:"sinceDone,omitempty"`
	// TieID resumes the id-ordered scan of the records modified exactly at
	// Since after this hs_object_id.
	TieID string `json:"tieId,omitempty"`
	// Seen maps ids delivered with a modified date ≥ Since to that date
	// (epoch ms), to drop re-reads of the overlap.
	Seen map[string]int64 `json:"seen,omitempty"`
}

// ChangesStats count a change feed's work.
type ChangesStats struct {
	Queries    int // search requests sent
	TieScans   int // times a single timestamp filled a page
	Delivered  int // records yielded
	Duplicates int // records skipped as already delivered
}

// Changes returns a change feed over records of type t.
func (c *Client) Changes(t ObjectType, opts ChangesOptions) (*Changes, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if opts.PageSize == 0 {
		opts.PageSize = MaxSearchLimit
	}
	if opts.PageSize < 1 || opts.PageSize > MaxSearchLimit {
		return nil, fmt.Errorf("hubspot: changes %s: PageSize %d out of range 1..%d", t, opts.PageSize, MaxSearchLimit)
	}
	if opts.IndexLag == 0 {
		opts.IndexLag = 5 * time.Minute
	}
	if opts.IndexLag < 0 {
		return nil, fmt.Errorf("hubspot: changes %s: negative IndexLag %s", t, opts.IndexLag)
	}
	if opts.MaxSeen <= 0 {
		opts.MaxSeen = 100_000
	}
	if opts.Now == nil {
		opts.Now = c.now
	}
	mod := t.ModifiedProperty()
	props := slices.Concat(opts.Properties, []string{mod, "hs_object_id"})
	slices.Sort(props)
	ch := &Changes{c: c, t: t, opts: opts, props: slices.Compact(props), mod: mod, seen: map[string]int64{}}
	if cur := opts.Cursor; cur != nil {
		ch.low, ch.lowDone = cur.Since.UnixMilli(), cur.SinceDone
		if cur.TieID != "" {
			if _, err := strconv.ParseInt(cur.TieID, 10, 64); err != nil {
				return nil, fmt.Errorf("hubspot: changes %s: Cursor.TieID %q is not a record id", t, cur.TieID)
			}
			ch.tie = &tieScan{ts: ch.low, afterID: cur.TieID}
		}
		maps.Copy(ch.seen, cur.Seen)
	} else {
		ch.low = opts.Since.UnixMilli()
	}
	return ch, nil
}

// Stats returns the feed's counters.
func (ch *Changes) Stats() ChangesStats { return ch.stats }

// All yields the changed records until the feed is caught up, then stops.
// Stop early by breaking out of the loop; the Cursor stays valid. Errors end
// the iteration (after the client's retries).
func (ch *Changes) All(ctx context.Context) iter.Seq2[Object, error] {
	return func(yield func(Object, error) bool) {
		ch.runStart = ch.opts.Now()
		for {
			more, err := ch.step(ctx, yield)
			if err != nil {
				yield(Object{}, fmt.Errorf("hubspot: changes %s: %w", ch.t, err))
				return
			}
			if !more {
				return
			}
		}
	}
}

// step runs one query and yields its new records. It reports whether to
// continue; stopped is returned as (false, nil).
func (ch *Changes) step(ctx context.Context, yield func(Object, error) bool) (bool, error) {
	req := SearchRequest{Properties: ch.props, Limit: ch.opts.PageSize}
	msStr := func(ms int64) string { return strconv.FormatInt(ms, 10) }
	if ch.tie != nil {
		filters := []Filter{{PropertyName: ch.mod, Operator: OpEQ, Value: msStr(ch.tie.ts)}}
		if ch.tie.afterID != "" {
			filters = append(filters, Filter{PropertyName: "hs_object_id", Operator: OpGT, Value: ch.tie.afterID})
		}
		req.FilterGroups = []FilterGroup{{Filters: filters}}
		req.Sorts = []Sort{{PropertyName: "hs_object_id", Direction: Ascending}}
	} else {
		op := OpGTE
		if ch.lowDone {
			op = OpGT
		}
		req.FilterGroups = []FilterGroup{{Filters: []Filter{{PropertyName: ch.mod, Operator: op, Value: msStr(ch.low)}}}}
		req.Sorts = []Sort{{PropertyName: ch.mod, Direction: Ascending}}
	}
	ch.stats.Queries++
	page, err := ch.c.Search(ctx, ch.t, req)
	if err != nil {
		return false, err
	}
	stamps := make([]int64, len(page.Results))
	for i, o := range page.Results {
		ts, err := modifiedMillis(o, ch.mod)
		if err != nil {
			return false, err
		}
		stamps[i] = ts
	}
	full := len(page.Results) >= ch.opts.PageSize

	// Advance the position before yielding, so that Cursor() called by the
	// consumer for record k already covers records 0..k.
	for i, o := range page.Results {
		if ch.tie != nil {
			ch.tie.afterID = o.ID
		}
		if prev, ok := ch.seen[o.ID]; ok && prev == stamps[i] {
			ch.stats.Duplicates++
			continue
		}
		ch.seen[o.ID] = stamps[i]
		ch.stats.Delivered++
		if !yield(o, nil) {
			// Stopped mid-page: the main scan keeps its lower bound (the
			// rest of the page comes back on resume, the delivered part is
			// in seen); a tie scan already advanced afterID.
			return false, nil
		}
	}
	more := ch.afterPage(full, stamps)
	ch.prune()
	return more, nil
}

// afterPage moves the scan past a page; it reports whether more may follow.
func (ch *Changes) afterPage(full bool, stamps []int64) bool {
	if ch.tie != nil {
		if full {
			return true
		}
		// Every record at the tie timestamp is delivered.
		ch.low, ch.lowDone, ch.tie = ch.tie.ts, true, nil
		return true
	}
	if !full {
		// Caught up: the short page held every record at or after low, so
		// everything up to its last timestamp is delivered.
		if len(stamps) > 0 {
			ch.low, ch.lowDone = stamps[len(stamps)-1], true
		}
		return false
	}
	first, last := stamps[0], stamps[len(stamps)-1]
	if first == last {
		// One timestamp fills the page: read it in id order.
		ch.stats.TieScans++
		ch.tie = &tieScan{ts: last}
		return true
	}
	ch.low, ch.lowDone = last, false
	return true
}

// floor is the cursor's lower bound: the scan position, but never later than
// the run's start minus the index lag.
func (ch *Changes) floor() (since int64, done bool, tieID string) {
	since, done = ch.low, ch.lowDone
	if ch.tie != nil {
		since, done, tieID = ch.tie.ts, false, ch.tie.afterID
	}
	if !ch.runStart.IsZero() {
		if lag := ch.runStart.Add(-ch.opts.IndexLag).UnixMilli(); lag < since || (lag == since && tieID != "") {
			return lag, false, ""
		}
	}
	return since, done, tieID
}

// prune forgets seen ids older than the cursor floor: no query of this run
// returns them again, and the cursor does not need them.
func (ch *Changes) prune() {
	since, _, _ := ch.floor()
	maps.DeleteFunc(ch.seen, func(_ string, ts int64) bool { return ts < since })
}

// Cursor returns the position to resume from. It covers every record yielded
// so far.
func (ch *Changes) Cursor() Cursor {
	since, done, tieID := ch.floor()
	seen := make(map[string]int64, len(ch.seen))
	for id, ts := range ch.seen {
		if ts >= since {
			seen[id] = ts
		}
	}
	if len(seen) > ch.opts.MaxSeen {
		type entry struct {
			id string
			ts int64
		}
		all := make([]entry, 0, len(seen))
		for id, ts := range seen {
			all = append(all, entry{id, ts})
		}
		slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(b.ts, a.ts) }) // newest first
		seen = make(map[string]int64, ch.opts.MaxSeen)
		for _, e := range all[:ch.opts.MaxSeen] {
			seen[e.id] = e.ts
		}
	}
	return Cursor{Since: time.UnixMilli(since).UTC(), SinceDone: done, TieID: tieID, Seen: seen}
}

// modifiedMillis reads a record's last-modified date as epoch ms. HubSpot
// returns it as an ISO 8601 string in search results (epoch ms elsewhere).
func modifiedMillis(o Object, prop string) (int64, error) {
	v := o.Properties[prop]
	if v == "" {
		if o.UpdatedAt.IsZero() {
			return 0, fmt.Errorf("record %s has no %s", o.ID, prop)
		}
		return o.UpdatedAt.UnixMilli(), nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, fmt.Errorf("record %s: %s %q is neither epoch ms nor RFC 3339", o.ID, prop, v)
	}
	return t.UnixMilli(), nil
}
