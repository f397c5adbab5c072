// Package mirror keeps a per-portal copy of the HubSpot CRM in Redis, shaped for matching:
// compact company, contact and deal records, a domain → companies index, an email →
// contacts index and the open deals of each company. It fills the copy with a full read
// (cursor list, no 10,000 cap), keeps it current with incremental reads through the
// HubSpot client's change feed and with re-reads triggered by webhook events, and records
// the progress of every read.
//
// Key layout, for portal p (every key carries the hash tag {p}):
//
//	sb:{p}:co                 hash  company id → record
//	sb:{p}:ct                 hash  contact id → record
//	sb:{p}:deal               hash  deal id → record
//	sb:{p}:dom:<domain>       set   "<company id>|<d|w|a>" (domain, website, additional domain)
//	sb:{p}:em:<email>         set   "<contact id>|<e|a>"   (email, additional email)
//	sb:{p}:odeals:<company>   set   "<deal id>|o" for every open deal of the company
//	sb:{p}:gone:<co|ct|deal>:<id>   string  deletion time (ms), kept for TombstoneTTL
//	sb:{p}:miss:<dom|em>:<key>      string  negative answer of a HubSpot look-up, short TTL
//	sb:{p}:mirror             hash  ready flag, cursors, last run per object
//	sb:{p}:mirror:lock        string lease of the replica reading the portal
//
// Redis is a cache here: losing it loses speed, not data. The cursors live next to the
// data they describe, so an empty Redis means an empty mirror and a new full read.
package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/signalbridge/signalbridge/libs/redisx"
	"github.com/signalbridge/signalbridge/services/matcher/internal/match"
)

// Separators of the record encoding (see scripts.go).
const (
	sepRecord = "\x1e"
	sepEntry  = "\x1d"
	sepField  = "\x1f"
)

// Kind letters of index entries.
const (
	kindDomain     = 'd'
	kindWebsite    = 'w'
	kindAdditional = 'a'
	kindEmail      = 'e'
	kindOpenDeal   = 'o'
)

// Object is a CRM object type the mirror holds.
type Object string

// The mirrored objects.
const (
	Companies Object = "companies"
	Contacts  Object = "contacts"
	Deals     Object = "deals"
)

// Objects lists the mirrored objects in the order they are read.
var Objects = []Object{Companies, Contacts, Deals}

// layout names the keys of one object type.
type layout struct {
	hash  string // record hash kind
	index string // index set kind
	gone  string // tombstone kind
	miss  string // negative-cache kind ("" = none)
	count string // per-record set counted on lookup ("" = none)
	extra string // per-record set deleted with the record ("" = none)
	gen   string // field of the generation hash its writes bump
}

var layouts = map[Object]layout{
	Companies: {hash: "co", index: "dom", gone: "co", miss: "dom", count: "odeals", extra: "odeals", gen: genCompanies},
	Contacts:  {hash: "ct", index: "em", gone: "ct", miss: "em", gen: genContacts},
	Deals:     {hash: "deal", index: "odeals", gone: "deal", gen: genCompanies},
}

// Store reads and writes the mirror. It is safe for concurrent use.
type Store struct {
	rdb          redis.UniversalClient
	tombstoneTTL time.Duration
}

// DefaultTombstoneTTL is how long a deletion keeps stale reads from bringing a record back.
const DefaultTombstoneTTL = 48 * time.Hour

// NewStore returns a Store on rdb. tombstoneTTL ≤ 0 means DefaultTombstoneTTL.
func NewStore(rdb redis.UniversalClient, tombstoneTTL time.Duration) *Store {
	if tombstoneTTL <= 0 {
		tombstoneTTL = DefaultTombstoneTTL
	}
	return &Store{rdb: rdb, tombstoneTTL: tombstoneTTL}
}

// Client returns the Redis client.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

func prefix(portal string) string { return redisx.Key(portal, "") }

// key is sb:{portal}:kind:parts.
func key(portal, kind string, parts ...string) string { return redisx.Key(portal, kind, parts...) }

// CompanyRecord is a company as the mirror stores it.
type CompanyRecord struct {
	match.Company
	Entries []match.Entry
}

// ContactRecord is a contact as the mirror stores it.
type ContactRecord struct {
	match.Contact
	Entries []match.Entry
}

// DealRecord is a deal as the mirror stores it.
type DealRecord struct {
	ID        string
	Open      bool
	Companies []string
	Modified  int64
}

func propKind(prop string) byte {
	switch prop {
	case match.PropDomain:
		return kindDomain
	case match.PropWebsite:
		return kindWebsite
	case match.PropEmail:
		return kindEmail
	default:
		return kindAdditional
	}
}

func kindProp(k byte, contact bool) string {
	switch {
	case contact && k == kindEmail:
		return match.PropEmail
	case contact:
		return match.PropAdditionalEmails
	case k == kindDomain:
		return match.PropDomain
	case k == kindWebsite:
		return match.PropWebsite
	default:
		return match.PropAdditionalDomains
	}
}

// clean drops the separator bytes (and other control characters) from free text.
func clean(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 }) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 {
			return ' '
		}
		return r
	}, s)
}

func encode(modified int64, entries []match.Entry, fields ...string) string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(modified, 10))
	b.WriteString(sepRecord)
	for i, e := range entries {
		if i > 0 {
			b.WriteString(sepEntry)
		}
		b.WriteString(e.Key)
		b.WriteString(sepField)
		b.WriteByte(propKind(e.Property))
	}
	b.WriteString(sepRecord)
	for i, f := range fields {
		if i > 0 {
			b.WriteString(sepField)
		}
		b.WriteString(clean(f))
	}
	return b.String()
}

// decoded is a parsed record value.
type decoded struct {
	modified int64
	entries  []match.Entry
	fields   []string
}

func decode(val string, contact bool, nfields int) (decoded, error) {
	mod, rest, ok1 := strings.Cut(val, sepRecord)
	ents, payload, ok2 := strings.Cut(rest, sepRecord)
	if !ok1 || !ok2 {
		return decoded{}, fmt.Errorf("mirror: malformed record %.60q", val)
	}
	var d decoded
	var err error
	if d.modified, err = strconv.ParseInt(mod, 10, 64); err != nil {
		return decoded{}, fmt.Errorf("mirror: malformed record modified %.30q", mod)
	}
	if ents != "" {
		for e := range strings.SplitSeq(ents, sepEntry) {
			k, kind, ok := strings.Cut(e, sepField)
			if !ok || len(kind) != 1 {
				return decoded{}, fmt.Errorf("mirror: malformed record entry %.60q", e)
			}
			d.entries = append(d.entries, match.Entry{Key: k, Property: kindProp(kind[0], contact)})
		}
	}
	d.fields = strings.SplitN(payload, sepField, nfields)
	for len(d.fields) < nfields {
		d.fields = append(d.fields, "")
	}
	return d, nil
}

func encodeCompany(c CompanyRecord) string {
	return encode(c.Modified, c.Entries, c.Name, c.OwnerID, strconv.Itoa(c.NumDeals), strconv.Itoa(c.NumContacts))
}

func decodeCompany(id, val string, openDeals int) (CompanyRecord, error) {
	d, err := decode(val, false, 4)
	if err != nil {
		return CompanyRecord{}, fmt.Errorf("company %s: %w", id, err)
	}
	deals, _ := strconv.Atoi(d.fields[2])
	contacts, _ := strconv.Atoi(d.fields[3])
	return CompanyRecord{
		Company: match.Company{
			ID: id, Name: d.fields[0], OwnerID: d.fields[1], NumDeals: deals, NumContacts: contacts,
			OpenDeals: openDeals, Modified: d.modified,
		},
		Entries: d.entries,
	}, nil
}

func encodeContact(c ContactRecord) string {
	return encode(c.Modified, c.Entries, c.OwnerID, c.CompanyID)
}

func decodeContact(id, val string) (ContactRecord, error) {
	d, err := decode(val, true, 2)
	if err != nil {
		return ContactRecord{}, fmt.Errorf("contact %s: %w", id, err)
	}
	return ContactRecord{
		Contact: match.Contact{ID: id, OwnerID: d.fields[0], CompanyID: d.fields[1], Modified: d.modified},
		Entries: d.entries,
	}, nil
}

func encodeDeal(d DealRecord) string {
	var entries []match.Entry
	if d.Open {
		for _, c := range d.Companies {
			entries = append(entries, match.Entry{Key: c, Property: "open"})
		}
	}
	open := "0"
	if d.Open {
		open = "1"
	}
	return encodeEntries(d.Modified, entries, kindOpenDeal, open, strings.Join(d.Companies, ","))
}

// encodeEntries is encode with every entry of one kind.
func encodeEntries(modified int64, entries []match.Entry, kind byte, fields ...string) string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(modified, 10))
	b.WriteString(sepRecord)
	for i, e := range entries {
		if i > 0 {
			b.WriteString(sepEntry)
		}
		b.WriteString(e.Key)
		b.WriteString(sepField)
		b.WriteByte(kind)
	}
	b.WriteString(sepRecord)
	b.WriteString(strings.Join(fields, sepField))
	return b.String()
}

func decodeDeal(id, val string) (DealRecord, error) {
	d, err := decode(val, false, 2)
	if err != nil {
		return DealRecord{}, fmt.Errorf("deal %s: %w", id, err)
	}
	rec := DealRecord{ID: id, Open: d.fields[0] == "1", Modified: d.modified}
	if d.fields[1] != "" {
		rec.Companies = strings.Split(d.fields[1], ",")
	}
	return rec, nil
}

// WriteStats count what a write did.
type WriteStats struct {
	Written   int // records stored or changed
	Unchanged int // records identical to the stored ones
	Skipped   int // records older than the stored ones or than their tombstone
}

// Add sums two counts.
func (w WriteStats) Add(o WriteStats) WriteStats {
	return WriteStats{w.Written + o.Written, w.Unchanged + o.Unchanged, w.Skipped + o.Skipped}
}

// maxScriptRecords bounds the records of one script call, so no call blocks Redis long.
const maxScriptRecords = 250

type item struct {
	id       string
	modified int64
	value    string
}

func (s *Store) put(ctx context.Context, portal string, obj Object, items []item) (WriteStats, error) {
	l := layouts[obj]
	var total WriteStats
	for start := 0; start < len(items); start += maxScriptRecords {
		part := items[start:min(start+maxScriptRecords, len(items))]
		args := make([]any, 0, 5+3*len(part))
		args = append(args, prefix(portal), l.index, l.gone, l.miss, l.gen)
		for _, it := range part {
			args = append(args, it.id, it.modified, it.value)
		}
		res, err := putScript.Run(ctx, s.rdb, []string{key(portal, l.hash)}, args...).Int64Slice()
		if err != nil {
			return total, fmt.Errorf("mirror: put %d %s of portal %s: %w", len(part), obj, portal, err)
		}
		if len(res) == 3 {
			total = total.Add(WriteStats{int(res[0]), int(res[1]), int(res[2])})
		}
	}
	return total, nil
}

// PutCompanies stores companies with their index entries. A company is skipped when the
// stored copy is newer or a newer deletion is recorded.
func (s *Store) PutCompanies(ctx context.Context, portal string, cs []CompanyRecord) (WriteStats, error) {
	items := make([]item, len(cs))
	for i, c := range cs {
		items[i] = item{c.ID, c.Modified, encodeCompany(c)}
	}
	return s.put(ctx, portal, Companies, items)
}

// PutContacts stores contacts with their index entries (see PutCompanies).
func (s *Store) PutContacts(ctx context.Context, portal string, cs []ContactRecord) (WriteStats, error) {
	items := make([]item, len(cs))
	for i, c := range cs {
		items[i] = item{c.ID, c.Modified, encodeContact(c)}
	}
	return s.put(ctx, portal, Contacts, items)
}

// PutDeals stores deals; an open deal counts towards the open deals of its companies.
func (s *Store) PutDeals(ctx context.Context, portal string, ds []DealRecord) (WriteStats, error) {
	items := make([]item, len(ds))
	for i, d := range ds {
		items[i] = item{d.ID, d.Modified, encodeDeal(d)}
	}
	return s.put(ctx, portal, Deals, items)
}

// Delete removes records of obj, with their index entries, and records their deletion at
// deletedAt so that an older copy (a lagging search result) cannot bring them back.
func (s *Store) Delete(ctx context.Context, portal string, obj Object, ids []string, deletedAt time.Time) (int, error) {
	l, ok := layouts[obj]
	if !ok {
		return 0, fmt.Errorf("mirror: delete: unknown object %q", obj)
	}
	removed := 0
	for start := 0; start < len(ids); start += maxScriptRecords {
		part := ids[start:min(start+maxScriptRecords, len(ids))]
		args := make([]any, 0, 8+len(part))
		args = append(args, prefix(portal), l.index, l.gone, l.miss, l.extra, int64(s.tombstoneTTL/time.Second), deletedAt.UnixMilli(), l.gen)
		for _, id := range part {
			args = append(args, id)
		}
		n, err := deleteScript.Run(ctx, s.rdb, []string{key(portal, l.hash)}, args...).Int()
		if err != nil {
			return removed, fmt.Errorf("mirror: delete %d %s of portal %s: %w", len(part), obj, portal, err)
		}
		removed += n
	}
	return removed, nil
}

// DomainResult is what the mirror knows about one domain.
type DomainResult struct {
	// Known is true when the index has entries for the domain (Hits) or a cached
	// negative answer (Negative); false means the mirror cannot answer.
	Known    bool
	Negative bool
	Hits     []match.Hit
}

// EmailResult is what the mirror knows about one email address.
type EmailResult struct {
	Known    bool
	Negative bool
	Hits     []match.ContactHit
}

// Lookup is one prepared index look-up, to be run alone or in a pipeline.
type Lookup struct {
	obj  Object
	keys []string
	cmd  *redis.Cmd
}

// LookupDomains prepares a look-up of domains (normalised) in the company index.
func LookupDomains(domains []string) *Lookup { return &Lookup{obj: Companies, keys: domains} }

// LookupEmails prepares a look-up of emails (normalised) in the contact index.
func LookupEmails(emails []string) *Lookup { return &Lookup{obj: Contacts, keys: emails} }

// Run runs look-ups of one portal in one round trip (a pipeline of script calls).
// Look-ups without keys are skipped.
func (s *Store) Run(ctx context.Context, portal string, lookups ...*Lookup) error {
	return s.run(ctx, portal, true, lookups)
}

func (s *Store) run(ctx context.Context, portal string, retry bool, lookups []*Lookup) error {
	pipe := s.rdb.Pipeline()
	n := 0
	for _, lk := range lookups {
		if lk == nil || len(lk.keys) == 0 {
			continue
		}
		l := layouts[lk.obj]
		args := make([]any, 0, 4+len(lk.keys))
		args = append(args, prefix(portal), l.index, l.miss, l.count)
		for _, k := range lk.keys {
			args = append(args, k)
		}
		lk.cmd = lookupScript.EvalSha(ctx, pipe, []string{key(portal, l.hash)}, args...)
		n++
	}
	if n == 0 {
		return nil
	}
	_, err := pipe.Exec(ctx)
	if err != nil && retry && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// First use on this server (or after a restart): load the script and retry once.
		if lerr := lookupScript.Load(ctx, s.rdb).Err(); lerr != nil {
			return fmt.Errorf("mirror: load lookup script: %w", lerr)
		}
		return s.run(ctx, portal, false, lookups)
	}
	if err != nil {
		return fmt.Errorf("mirror: look-up in portal %s: %w", portal, err)
	}
	return nil
}

// rows returns the ready flag and the per-key rows of a look-up that ran.
func (lk *Lookup) rows() (bool, [][]any, error) {
	if lk.cmd == nil {
		return false, nil, nil
	}
	raw, err := lk.cmd.Slice()
	if err != nil {
		return false, nil, err
	}
	if len(raw) != len(lk.keys)+1 {
		return false, nil, fmt.Errorf("mirror: look-up answered %d rows for %d keys", len(raw)-1, len(lk.keys))
	}
	ready, _ := raw[0].(string)
	rows := make([][]any, len(lk.keys))
	for i := range lk.keys {
		rows[i], _ = raw[i+1].([]any)
	}
	return ready == "1", rows, nil
}

// Domains returns the results of a LookupDomains that ran, and whether the portal's
// mirror is ready (a full read completed).
func (lk *Lookup) Domains() (ready bool, out []DomainResult, err error) {
	ready, rows, err := lk.rows()
	if err != nil {
		return false, nil, err
	}
	out = make([]DomainResult, len(lk.keys))
	for i, row := range rows {
		if len(row) == 0 {
			continue
		}
		tag, _ := row[0].(string)
		out[i].Known = true
		if tag == "n" {
			out[i].Negative = true
			continue
		}
		for j := 1; j+2 < len(row); j += 3 {
			member, _ := row[j].(string)
			val, ok := row[j+1].(string)
			count, _ := row[j+2].(int64)
			if !ok {
				continue
			}
			id, kind, found := cutLast(member)
			if !found {
				continue
			}
			rec, err := decodeCompany(id, val, int(count))
			if err != nil {
				return false, nil, err
			}
			out[i].Hits = append(out[i].Hits, match.Hit{Company: rec.Company, Property: kindProp(kind, false)})
		}
		if len(out[i].Hits) == 0 {
			out[i].Known = false // every member vanished under us: ask again
		}
	}
	return ready, out, nil
}

// Emails returns the results of a LookupEmails that ran (see Domains).
func (lk *Lookup) Emails() (ready bool, out []EmailResult, err error) {
	ready, rows, err := lk.rows()
	if err != nil {
		return false, nil, err
	}
	out = make([]EmailResult, len(lk.keys))
	for i, row := range rows {
		if len(row) == 0 {
			continue
		}
		tag, _ := row[0].(string)
		out[i].Known = true
		if tag == "n" {
			out[i].Negative = true
			continue
		}
		for j := 1; j+2 < len(row); j += 3 {
			member, _ := row[j].(string)
			val, ok := row[j+1].(string)
			if !ok {
				continue
			}
			id, kind, found := cutLast(member)
			if !found {
				continue
			}
			rec, err := decodeContact(id, val)
			if err != nil {
				return false, nil, err
			}
			out[i].Hits = append(out[i].Hits, match.ContactHit{Contact: rec.Contact, Property: kindProp(kind, true)})
		}
		if len(out[i].Hits) == 0 {
			out[i].Known = false
		}
	}
	return ready, out, nil
}

// cutLast splits "id|k".
func cutLast(member string) (string, byte, bool) {
	i := strings.LastIndexByte(member, '|')
	if i <= 0 || i != len(member)-2 {
		return "", 0, false
	}
	return member[:i], member[i+1], true
}

// Companies reads companies by id (with their open deals); absent ids are left out.
func (s *Store) Companies(ctx context.Context, portal string, ids []string) (map[string]CompanyRecord, error) {
	out := make(map[string]CompanyRecord, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	l := layouts[Companies]
	args := make([]any, 0, 2+len(ids))
	args = append(args, prefix(portal), l.count)
	for _, id := range ids {
		args = append(args, id)
	}
	raw, err := recordsScript.Run(ctx, s.rdb, []string{key(portal, l.hash)}, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("mirror: read %d companies of portal %s: %w", len(ids), portal, err)
	}
	for i, id := range ids {
		if 2*i+1 >= len(raw) {
			break
		}
		val, ok := raw[2*i].(string)
		if !ok {
			continue
		}
		count, _ := raw[2*i+1].(int64)
		rec, err := decodeCompany(id, val, int(count))
		if err != nil {
			return nil, err
		}
		out[id] = rec
	}
	return out, nil
}

// Contact reads one contact by id.
func (s *Store) Contact(ctx context.Context, portal, id string) (ContactRecord, bool, error) {
	val, err := s.rdb.HGet(ctx, key(portal, layouts[Contacts].hash), id).Result()
	if errors.Is(err, redis.Nil) {
		return ContactRecord{}, false, nil
	}
	if err != nil {
		return ContactRecord{}, false, fmt.Errorf("mirror: read contact %s of portal %s: %w", id, portal, err)
	}
	rec, err := decodeContact(id, val)
	return rec, err == nil, err
}

// Deal reads one deal by id.
func (s *Store) Deal(ctx context.Context, portal, id string) (DealRecord, bool, error) {
	val, err := s.rdb.HGet(ctx, key(portal, layouts[Deals].hash), id).Result()
	if errors.Is(err, redis.Nil) {
		return DealRecord{}, false, nil
	}
	if err != nil {
		return DealRecord{}, false, fmt.Errorf("mirror: read deal %s of portal %s: %w", id, portal, err)
	}
	rec, err := decodeDeal(id, val)
	return rec, err == nil, err
}

// Count returns how many records of obj the mirror holds.
func (s *Store) Count(ctx context.Context, portal string, obj Object) (int64, error) {
	n, err := s.rdb.HLen(ctx, key(portal, layouts[obj].hash)).Result()
	if err != nil {
		return 0, fmt.Errorf("mirror: count %s of portal %s: %w", obj, portal, err)
	}
	return n, nil
}

// CacheNegative records that HubSpot knows no company for these domains (obj Companies)
// or no contact for these emails (obj Contacts), for ttl.
func (s *Store) CacheNegative(ctx context.Context, portal string, obj Object, keys []string, ttl time.Duration) error {
	if len(keys) == 0 {
		return nil
	}
	l := layouts[obj]
	pipe := s.rdb.Pipeline()
	for _, k := range keys {
		pipe.Set(ctx, key(portal, "miss", l.miss, k), "1", ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("mirror: cache %d negative %s answers of portal %s: %w", len(keys), obj, portal, err)
	}
	return nil
}

// IDs iterates over the ids of the records of obj (HSCAN, in no order). The callback may
// stop the iteration by returning false.
func (s *Store) IDs(ctx context.Context, portal string, obj Object, fn func(id string, modified int64) bool) error {
	h := key(portal, layouts[obj].hash)
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, h, cursor, "", 1000).Result()
		if err != nil {
			return fmt.Errorf("mirror: scan %s of portal %s: %w", obj, portal, err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			mod, _, _ := strings.Cut(kv[i+1], sepRecord)
			ms, _ := strconv.ParseInt(mod, 10, 64)
			if !fn(kv[i], ms) {
				return nil
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// ---- state: ready flag, cursors, runs ----

// Run is the record of one read of one object type.
type Run struct {
	Object   Object    `json:"object"`
	Mode     string    `json:"mode"` // full or incremental
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Duration string    `json:"duration,omitempty"`
	// Records read from HubSpot; Written, Unchanged and Skipped say what the mirror did
	// with them; Deleted counts records removed by the sweep after a full read.
	Records   int    `json:"records"`
	Written   int    `json:"written"`
	Unchanged int    `json:"unchanged"`
	Skipped   int    `json:"skipped"`
	Deleted   int    `json:"deleted"`
	Calls     int    `json:"calls"`
	Cursor    string `json:"cursor,omitempty"` // the change feed's lower bound after the run
	Error     string `json:"error,omitempty"`
}

// State is what the mirror records about a portal.
type State struct {
	// Ready is true once a full read of every object completed.
	Ready bool `json:"ready"`
	// Runs holds the last run (and the last full run) per object, keyed
	// "<object>" and "<object>:full".
	Runs map[string]Run `json:"runs"`
	// Running names the run in progress, if any ("" when idle).
	Running string `json:"running,omitempty"`
}

func stateKey(portal string) string { return key(portal, "mirror") }

// State reads the portal's mirror state.
func (s *Store) State(ctx context.Context, portal string) (State, error) {
	all, err := s.rdb.HGetAll(ctx, stateKey(portal)).Result()
	if err != nil {
		return State{}, fmt.Errorf("mirror: state of portal %s: %w", portal, err)
	}
	st := State{Ready: all["ready"] == "1", Runs: map[string]Run{}, Running: all["running"]}
	for f, v := range all {
		name, ok := strings.CutPrefix(f, "run:")
		if !ok {
			continue
		}
		var r Run
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return State{}, fmt.Errorf("mirror: state of portal %s: field %s: %w", portal, f, err)
		}
		st.Runs[name] = r
	}
	return st, nil
}

// SaveRun records a run (as the last run of its object, and as the last full run too
// when it is one).
func (s *Store) SaveRun(ctx context.Context, portal string, r Run) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("mirror: encode run: %w", err)
	}
	fields := []any{"run:" + string(r.Object), b}
	if r.Mode == ModeFull {
		fields = append(fields, "run:"+string(r.Object)+":full", b)
	}
	if err := s.rdb.HSet(ctx, stateKey(portal), fields...).Err(); err != nil {
		return fmt.Errorf("mirror: save run of portal %s: %w", portal, err)
	}
	return nil
}

// SetRunning records the run in progress ("" when none).
func (s *Store) SetRunning(ctx context.Context, portal, what string) error {
	var err error
	if what == "" {
		err = s.rdb.HDel(ctx, stateKey(portal), "running").Err()
	} else {
		err = s.rdb.HSet(ctx, stateKey(portal), "running", what).Err()
	}
	if err != nil {
		return fmt.Errorf("mirror: state of portal %s: %w", portal, err)
	}
	return nil
}

// SetReady marks the portal's mirror complete.
func (s *Store) SetReady(ctx context.Context, portal string) error {
	if err := s.rdb.HSet(ctx, stateKey(portal), "ready", "1").Err(); err != nil {
		return fmt.Errorf("mirror: mark portal %s ready: %w", portal, err)
	}
	return nil
}

// CursorJSON reads the stored change-feed cursor of obj ("" when none).
func (s *Store) CursorJSON(ctx context.Context, portal string, obj Object) (string, error) {
	v, err := s.rdb.HGet(ctx, stateKey(portal), "cursor:"+string(obj)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("mirror: cursor of %s in portal %s: %w", obj, portal, err)
	}
	return v, nil
}

// SaveCursorJSON stores the change-feed cursor of obj.
func (s *Store) SaveCursorJSON(ctx context.Context, portal string, obj Object, cursor []byte) error {
	if err := s.rdb.HSet(ctx, stateKey(portal), "cursor:"+string(obj), cursor).Err(); err != nil {
		return fmt.Errorf("mirror: save cursor of %s in portal %s: %w", obj, portal, err)
	}
	return nil
}

// Lock takes the portal's read lease for ttl; it reports false when another holder has
// it. Release with Unlock and the same token; extend with Lock again (same token).
func (s *Store) Lock(ctx context.Context, portal, token string, ttl time.Duration) (bool, error) {
	k := key(portal, "mirror", "lock")
	ok, err := extendScript.Run(ctx, s.rdb, []string{k}, token, ttl.Milliseconds()).Bool()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("mirror: lock portal %s: %w", portal, err)
	}
	return ok, nil
}

// Unlock releases the lease if token still holds it.
func (s *Store) Unlock(ctx context.Context, portal, token string) error {
	k := key(portal, "mirror", "lock")
	if err := unlockScript.Run(ctx, s.rdb, []string{k}, token).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("mirror: unlock portal %s: %w", portal, err)
	}
	return nil
}

var extendScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)
