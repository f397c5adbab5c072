package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/services/matcher/internal/match"
)

// Read modes.
const (
	ModeFull        = "full"
	ModeIncremental = "incremental"
)

// ErrNoCursor means an incremental read was asked for an object that was never fully read.
var ErrNoCursor = errors.New("no change-feed cursor: a full read must come first")

// spec says how to read one object type from HubSpot.
type spec struct {
	hs    hubspot.ObjectType
	props []string
	assoc []string
}

var specs = map[Object]spec{
	Companies: {hs: hubspot.Companies, props: []string{
		"name", "domain", "website", "hs_additional_domains", "hubspot_owner_id",
		"num_associated_deals", "num_associated_contacts", "hs_lastmodifieddate",
	}},
	Contacts: {hs: hubspot.Contacts, props: []string{
		"email", "hs_additional_emails", "associatedcompanyid", "hubspot_owner_id", "lastmodifieddate",
	}},
	Deals: {hs: hubspot.Deals, props: []string{
		"dealstage", "pipeline", "hs_is_closed", "hs_lastmodifieddate",
	}, assoc: []string{string(hubspot.Companies)}},
}

// CompanyProperties are the company properties the mirror reads (for searches that
// must return the same shape).
func CompanyProperties() []string { return slices.Clone(specs[Companies].props) }

// ContactProperties are the contact properties the mirror reads.
func ContactProperties() []string { return slices.Clone(specs[Contacts].props) }

// modifiedOf reads a record's last-modified time in epoch ms: the property as HubSpot
// returns it (epoch ms or RFC 3339), else updatedAt.
func modifiedOf(o hubspot.Object, prop string) int64 {
	if v := o.Properties[prop]; v != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			return ms
		}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t.UnixMilli()
		}
	}
	return o.UpdatedAt.UnixMilli()
}

func atoi(s string) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return int(f)
}

// CompanyFrom converts a HubSpot company (with the CompanyProperties) to a record.
func CompanyFrom(o hubspot.Object) CompanyRecord {
	p := o.Properties
	return CompanyRecord{
		Company: match.Company{
			ID:          o.ID,
			Name:        p["name"],
			OwnerID:     p["hubspot_owner_id"],
			NumDeals:    atoi(p["num_associated_deals"]),
			NumContacts: atoi(p["num_associated_contacts"]),
			Modified:    modifiedOf(o, "hs_lastmodifieddate"),
		},
		Entries: match.CompanyEntries(p["domain"], p["website"], p["hs_additional_domains"]),
	}
}

// ContactFrom converts a HubSpot contact (with the ContactProperties) to a record.
func ContactFrom(o hubspot.Object) ContactRecord {
	p := o.Properties
	return ContactRecord{
		Contact: match.Contact{
			ID:        o.ID,
			OwnerID:   p["hubspot_owner_id"],
			CompanyID: strings.TrimSuffix(p["associatedcompanyid"], ".0"),
			Modified:  modifiedOf(o, "lastmodifieddate"),
		},
		Entries: match.ContactEntries(p["email"], p["hs_additional_emails"]),
	}
}

// DealFrom converts a HubSpot deal to a record; companies are its associated company ids
// (from o.Associations when nil).
func DealFrom(o hubspot.Object, companies []string) DealRecord {
	p := o.Properties
	if companies == nil {
		for _, a := range o.Associations[string(hubspot.Companies)].Results {
			companies = append(companies, a.ID)
		}
	}
	slices.Sort(companies)
	companies = slices.Compact(companies)
	open := p["hs_is_closed"] != "true"
	if p["hs_is_closed"] == "" {
		open = p["dealstage"] != "closedwon" && p["dealstage"] != "closedlost"
	}
	return DealRecord{ID: o.ID, Open: open, Companies: companies, Modified: modifiedOf(o, "hs_lastmodifieddate")}
}

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	// IndexLag is how long a HubSpot write may take to become searchable (default 5m);
	// the change feed re-reads that much.
	IndexLag time.Duration
	// BatchSize is how many records go to Redis per write (default 500).
	BatchSize int
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Reader copies CRM records from HubSpot into the Store.
type Reader struct {
	store *Store
	opts  ReaderOptions
	log   *slog.Logger
}

// NewReader returns a Reader writing to store.
func NewReader(store *Store, opts ReaderOptions) *Reader {
	if opts.IndexLag <= 0 {
		opts.IndexLag = 5 * time.Minute
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Reader{store: store, opts: opts, log: opts.Logger}
}

// Store returns the reader's store.
func (r *Reader) Store() *Store { return r.store }

// writer buffers records of one object and writes them in batches.
type writer struct {
	r      *Reader
	portal string
	obj    Object
	hc     *hubspot.Client
	assoc  bool // the records carry their associations
	buf    []hubspot.Object
	stats  WriteStats
	calls  int
}

func (w *writer) add(ctx context.Context, o hubspot.Object) error {
	w.buf = append(w.buf, o)
	if len(w.buf) >= w.r.opts.BatchSize {
		return w.flush(ctx)
	}
	return nil
}

func (w *writer) flush(ctx context.Context) error {
	if len(w.buf) == 0 {
		return nil
	}
	st, err := w.r.write(ctx, w.portal, w.obj, w.hc, w.buf, w.assoc, &w.calls)
	w.stats = w.stats.Add(st)
	w.buf = w.buf[:0]
	return err
}

// write stores HubSpot records of obj. Deals read without their associations (by search
// or batch read: withAssoc false) get them from the associations API.
func (r *Reader) write(ctx context.Context, portal string, obj Object, hc *hubspot.Client, objs []hubspot.Object, withAssoc bool, calls *int) (WriteStats, error) {
	switch obj {
	case Companies:
		recs := make([]CompanyRecord, len(objs))
		for i, o := range objs {
			recs[i] = CompanyFrom(o)
		}
		return r.store.PutCompanies(ctx, portal, recs)
	case Contacts:
		recs := make([]ContactRecord, len(objs))
		for i, o := range objs {
			recs[i] = ContactFrom(o)
		}
		return r.store.PutContacts(ctx, portal, recs)
	case Deals:
		var assoc map[string][]string
		if !withAssoc {
			var err error
			if assoc, err = dealCompanies(ctx, hc, objs, calls); err != nil {
				return WriteStats{}, err
			}
		}
		recs := make([]DealRecord, len(objs))
		for i, o := range objs {
			var companies []string // nil: take them from o.Associations
			if !withAssoc {
				companies = append([]string{}, assoc[o.ID]...)
			}
			recs[i] = DealFrom(o, companies)
		}
		return r.store.PutDeals(ctx, portal, recs)
	}
	return WriteStats{}, fmt.Errorf("mirror: write: unknown object %q", obj)
}

// dealCompanies reads the company associations of deals, 100 per call.
func dealCompanies(ctx context.Context, hc *hubspot.Client, deals []hubspot.Object, calls *int) (map[string][]string, error) {
	out := make(map[string][]string, len(deals))
	for start := 0; start < len(deals); start += hubspot.MaxBatchSize {
		part := deals[start:min(start+hubspot.MaxBatchSize, len(deals))]
		ids := make([]string, len(part))
		for i, d := range part {
			ids[i] = d.ID
		}
		*calls++
		res, err := hc.BatchReadAssociations(ctx, hubspot.Deals, hubspot.Companies, ids)
		if err != nil {
			return nil, fmt.Errorf("mirror: read deal associations: %w", err)
		}
		for _, a := range res.Results {
			for _, to := range a.To {
				out[a.From.ID] = append(out[a.From.ID], to.ToObjectID)
			}
		}
	}
	return out, nil
}

func (r *Reader) finish(ctx context.Context, portal string, run *Run, err error) (Run, error) {
	now := r.opts.Now()
	run.Finished = now
	run.Duration = now.Sub(run.Started).Round(time.Millisecond).String()
	if err != nil {
		run.Error = err.Error()
	}
	if serr := r.store.SaveRun(ctx, portal, *run); serr != nil {
		err = errors.Join(err, serr)
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	r.log.Log(ctx, level, "crm read finished", "portal", portal, "object", run.Object, "mode", run.Mode,
		"records", run.Records, "written", run.Written, "deleted", run.Deleted, "calls", run.Calls, "duration", run.Duration, "err", err)
	return *run, err
}

// Full reads every record of obj with the list API (cursor paging, no 10,000 cap),
// removes mirrored records HubSpot no longer has, and starts the change feed at the
// read's start. Memory stays bounded by BatchSize records plus 8 bytes per record id.
func (r *Reader) Full(ctx context.Context, portal string, hc *hubspot.Client, obj Object) (Run, error) {
	sp, ok := specs[obj]
	if !ok {
		return Run{}, fmt.Errorf("mirror: full read: unknown object %q", obj)
	}
	start := r.opts.Now()
	run := Run{Object: obj, Mode: ModeFull, Started: start}
	w := &writer{r: r, portal: portal, obj: obj, hc: hc, assoc: true}
	var seen []uint64
	var maxID uint64
	pages := 0
	opts := hubspot.ListOptions{Properties: sp.props, Associations: sp.assoc}
	err := func() error {
		for {
			pages++
			page, err := hc.List(ctx, sp.hs, opts)
			if err != nil {
				return fmt.Errorf("mirror: list %s: %w", obj, err)
			}
			for _, o := range page.Results {
				run.Records++
				if n, err := strconv.ParseUint(o.ID, 10, 64); err == nil {
					seen = append(seen, n)
					maxID = max(maxID, n)
				}
				if err := w.add(ctx, o); err != nil {
					return err
				}
			}
			if opts.After = page.Paging.NextAfter(); opts.After == "" {
				return w.flush(ctx)
			}
		}
	}()
	run.Calls = pages + w.calls
	run.Written, run.Unchanged, run.Skipped = w.stats.Written, w.stats.Unchanged, w.stats.Skipped
	if err != nil {
		return r.finish(ctx, portal, &run, err)
	}
	deleted, err := r.sweep(ctx, portal, obj, seen, maxID, start)
	run.Deleted = deleted
	if err != nil {
		return r.finish(ctx, portal, &run, err)
	}
	cur := hubspot.Cursor{Since: start.Add(-r.opts.IndexLag).UTC().Truncate(time.Millisecond)}
	run.Cursor = cur.Since.Format(time.RFC3339Nano)
	if err := r.saveCursor(ctx, portal, obj, cur); err != nil {
		return r.finish(ctx, portal, &run, err)
	}
	return r.finish(ctx, portal, &run, nil)
}

// sweep deletes the mirrored records a full read did not see: ids up to the highest id
// listed (newer ones may have been created since) whose copy predates the read.
func (r *Reader) sweep(ctx context.Context, portal string, obj Object, seen []uint64, maxID uint64, start time.Time) (int, error) {
	slices.Sort(seen)
	startMs := start.UnixMilli()
	var stale []string
	err := r.store.IDs(ctx, portal, obj, func(id string, modified int64) bool {
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil || n > maxID || modified >= startMs {
			return true
		}
		if _, found := slices.BinarySearch(seen, n); !found {
			stale = append(stale, id)
		}
		return true
	})
	if err != nil || len(stale) == 0 {
		return 0, err
	}
	return r.store.Delete(ctx, portal, obj, stale, start)
}

func (r *Reader) saveCursor(ctx context.Context, portal string, obj Object, cur hubspot.Cursor) error {
	b, err := json.Marshal(cur)
	if err != nil {
		return fmt.Errorf("mirror: encode cursor: %w", err)
	}
	return r.store.SaveCursorJSON(ctx, portal, obj, b)
}

// Incremental reads the records of obj changed since the stored cursor through the
// client's change feed (search keyset paging: no 10,000 cap, safe against storms of one
// timestamp and against search-index lag), writes them, and moves the cursor after every
// batch written, so an interrupted read resumes where it stopped.
func (r *Reader) Incremental(ctx context.Context, portal string, hc *hubspot.Client, obj Object) (Run, error) {
	sp, ok := specs[obj]
	if !ok {
		return Run{}, fmt.Errorf("mirror: incremental read: unknown object %q", obj)
	}
	raw, err := r.store.CursorJSON(ctx, portal, obj)
	if err != nil {
		return Run{}, err
	}
	if raw == "" {
		return Run{}, fmt.Errorf("mirror: incremental read of %s in portal %s: %w", obj, portal, ErrNoCursor)
	}
	var cur hubspot.Cursor
	if err := json.Unmarshal([]byte(raw), &cur); err != nil {
		return Run{}, fmt.Errorf("mirror: stored cursor of %s in portal %s: %w", obj, portal, err)
	}
	run := Run{Object: obj, Mode: ModeIncremental, Started: r.opts.Now()}
	ch, err := hc.Changes(sp.hs, hubspot.ChangesOptions{Properties: sp.props, Cursor: &cur, IndexLag: r.opts.IndexLag, Now: r.opts.Now})
	if err != nil {
		return r.finish(ctx, portal, &run, err)
	}
	w := &writer{r: r, portal: portal, obj: obj, hc: hc}
	err = func() error {
		for o, err := range ch.All(ctx) {
			if err != nil {
				return err
			}
			run.Records++
			if err := w.add(ctx, o); err != nil {
				return err
			}
			if len(w.buf) == 0 { // a batch was just written: the cursor may move past it
				if err := r.saveCursor(ctx, portal, obj, ch.Cursor()); err != nil {
					return err
				}
			}
		}
		if err := w.flush(ctx); err != nil {
			return err
		}
		return r.saveCursor(ctx, portal, obj, ch.Cursor())
	}()
	run.Calls = ch.Stats().Queries + w.calls
	run.Written, run.Unchanged, run.Skipped = w.stats.Written, w.stats.Unchanged, w.stats.Skipped
	run.Cursor = ch.Cursor().Since.Format(time.RFC3339Nano)
	return r.finish(ctx, portal, &run, err)
}

// RefreshResult says what a re-read found.
type RefreshResult struct {
	Found   []string // ids read and written
	Missing []string // ids HubSpot no longer has (deleted from the mirror)
	Calls   int
}

// Refresh re-reads records by id with the batch read API (consistent, unlike search),
// writes the ones found and deletes the ones HubSpot no longer has. The caller sets the
// quota class on ctx (webhook-driven re-reads run at quota.Webhook).
func (r *Reader) Refresh(ctx context.Context, portal string, hc *hubspot.Client, obj Object, ids []string) (RefreshResult, error) {
	sp, ok := specs[obj]
	if !ok {
		return RefreshResult{}, fmt.Errorf("mirror: refresh: unknown object %q", obj)
	}
	var res RefreshResult
	var found []hubspot.Object
	for start := 0; start < len(ids); start += hubspot.MaxBatchSize {
		part := ids[start:min(start+hubspot.MaxBatchSize, len(ids))]
		res.Calls++
		br, err := hc.BatchRead(ctx, sp.hs, hubspot.BatchReadRequest{IDs: part, Properties: sp.props})
		if err != nil {
			return res, fmt.Errorf("mirror: re-read %d %s: %w", len(part), obj, err)
		}
		got := map[string]bool{}
		for _, o := range br.Results {
			if o.Archived {
				continue
			}
			got[o.ID] = true
			found = append(found, o)
		}
		for _, id := range part {
			if !got[id] {
				res.Missing = append(res.Missing, id)
			}
		}
	}
	if len(found) > 0 {
		if _, err := r.write(ctx, portal, obj, hc, found, false, &res.Calls); err != nil {
			return res, err
		}
	}
	for _, o := range found {
		res.Found = append(res.Found, o.ID)
	}
	if len(res.Missing) > 0 {
		if _, err := r.store.Delete(ctx, portal, obj, res.Missing, r.opts.Now()); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Delete removes records of obj deleted (or merged away) in HubSpot at deletedAt.
func (r *Reader) Delete(ctx context.Context, portal string, obj Object, ids []string, deletedAt time.Time) error {
	_, err := r.store.Delete(ctx, portal, obj, ids, deletedAt)
	return err
}
