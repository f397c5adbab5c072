package hubspottest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// PortalOptions describes a portal (a HubSpot account) to add to the sandbox.
type PortalOptions struct {
	// ID is the portal (hub) id; 0 picks the next free one.
	ID int64
	// Token is the private-app / service-key bearer token; "" generates one.
	Token string
	// Tier sets the rate limits: free, starter, professional, enterprise or
	// api_addon (default free).
	Tier string
	// Burst, Interval, Daily and SearchPerSecond override the tier's limits,
	// e.g. to scale a benchmark up. Zero keeps the tier's value.
	Burst           int
	Interval        time.Duration
	Daily           int
	SearchPerSecond int
	// OAuth, when set, lets the portal be used through an OAuth app: POST
	// /oauth/v1/token exchanges its refresh token for expiring access tokens.
	OAuth *OAuthApp
	// PrivateAppID is the app id reported as sourceId of writes made with
	// Token (default: generated).
	PrivateAppID int64
	// Owners seeds the owners API; nil seeds three owners.
	Owners []Owner
}

// OAuthApp is an OAuth app installed on a portal.
type OAuthApp struct {
	// AppID is the app id; it is the sourceId of writes made with its
	// tokens (default: generated).
	AppID        int64
	ClientID     string
	ClientSecret string
	RefreshToken string
	// AccessTokenTTL is the lifetime of issued access tokens (default 30
	// minutes, HubSpot's expires_in of 1800).
	AccessTokenTTL time.Duration
	// Burst overrides the per-app ten-secondly limit (default 110).
	Burst int
}

// Owner is a CRM owner (a HubSpot user).
type Owner struct {
	ID        string
	Email     string
	FirstName string
	LastName  string
	UserID    int64
	Archived  bool
}

// tokenInfo is what a bearer token stands for.
type tokenInfo struct {
	portal  *Portal
	oauth   bool
	appID   int64
	expires time.Time
}

// source is the changeSource/sourceId of a write.
type source struct {
	change string
	id     string
}

func (c *call) source() source {
	return source{change: "INTEGRATION", id: strconv.FormatInt(c.auth.appID, 10)}
}

// Portal is one HubSpot account in the sandbox.
type Portal struct {
	s       *Server
	id      int64
	token   string
	oauth   *OAuthApp
	appID   int64 // private app id
	limiter *limiter
	stats   *statsCounter
	faults  faultState

	mu      sync.Mutex
	stores  map[string]*store
	props   map[string]*propertySet
	assoc   map[assocKey]map[int64]map[int]struct{}
	lists   map[int64]*list
	imports map[int64]*importJob
	owners  []Owner
	nextID  int64
	nextLID int64
	nextIID int64
}

// AddPortal adds a portal. Invalid options are repaired rather than
// rejected (unknown tier → free, taken id or token → a fresh one) and logged;
// use CreatePortal to get an error instead.
func (s *Server) AddPortal(opts PortalOptions) *Portal {
	p, err := s.CreatePortal(opts)
	if err == nil {
		return p
	}
	s.log.Warn("hubspottest: repairing portal options", "err", err)
	var tierErr *tierError
	if errors.As(err, &tierErr) {
		opts.Tier = TierFree
	}
	opts.ID, opts.Token = 0, ""
	p, err = s.CreatePortal(opts)
	if err != nil {
		// Only the tier, id and token can fail, and all three were reset.
		s.log.Error("hubspottest: add portal", "err", err)
	}
	return p
}

type tierError struct{ err error }

func (e *tierError) Error() string { return e.err.Error() }

// CreatePortal adds a portal, or says what is wrong with opts.
func (s *Server) CreatePortal(opts PortalOptions) (*Portal, error) {
	l, err := tierLimits(opts.Tier)
	if err != nil {
		return nil, &tierError{err: fmt.Errorf("portal options: %w", err)}
	}
	if opts.Burst > 0 {
		l.burst = opts.Burst
		l.oauthBurst = opts.Burst
	}
	if opts.Interval > 0 {
		l.interval = opts.Interval
	}
	if opts.Daily > 0 {
		l.daily = opts.Daily
	}
	if opts.SearchPerSecond > 0 {
		l.searchPerSec = opts.SearchPerSecond
	}
	if opts.OAuth != nil && opts.OAuth.Burst > 0 {
		l.oauthBurst = opts.OAuth.Burst
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if opts.ID == 0 {
		opts.ID = 10_000_000 + s.seq.Add(1)
	}
	if _, taken := s.portals[opts.ID]; taken {
		return nil, fmt.Errorf("portal options: portal id %d is already in use", opts.ID)
	}
	if opts.Token == "" {
		opts.Token = "pat-na1-" + uuid.NewString()
	}
	if _, taken := s.tokens[opts.Token]; taken {
		return nil, fmt.Errorf("portal options: token %q is already in use", opts.Token)
	}
	if opts.PrivateAppID == 0 {
		opts.PrivateAppID = 2_000_000 + s.seq.Add(1)
	}
	now := s.now()
	p := &Portal{
		s:       s,
		id:      opts.ID,
		token:   opts.Token,
		appID:   opts.PrivateAppID,
		limiter: newLimiter(l),
		stats:   newStatsCounter(),
		stores:  map[string]*store{},
		props:   map[string]*propertySet{},
		assoc:   map[assocKey]map[int64]map[int]struct{}{},
		lists:   map[int64]*list{},
		imports: map[int64]*importJob{},
		nextID:  1000,
		nextLID: 0,
		nextIID: 50_000_000,
	}
	p.faults.set(Faults{})
	for _, k := range s.kinds.all {
		p.stores[k.name] = newStore(k)
		p.props[k.name] = builtinProperties(k, now)
	}
	p.owners = opts.Owners
	if p.owners == nil {
		p.owners = defaultOwners(s, opts.ID)
	}
	if opts.OAuth != nil {
		o := *opts.OAuth
		if o.AppID == 0 {
			o.AppID = 3_000_000 + s.seq.Add(1)
		}
		if o.ClientID == "" {
			o.ClientID = uuid.NewString()
		}
		if o.ClientSecret == "" {
			o.ClientSecret = uuid.NewString()
		}
		if o.RefreshToken == "" {
			o.RefreshToken = "na1-" + uuid.NewString()
		}
		if o.AccessTokenTTL <= 0 {
			o.AccessTokenTTL = 30 * time.Minute
		}
		p.oauth = &o
	}
	s.portals[p.id] = p
	s.tokens[p.token] = &tokenInfo{portal: p, appID: p.appID}
	return p, nil
}

func defaultOwners(s *Server, portalID int64) []Owner {
	names := [][2]string{{"Alex", "Morgan"}, {"Sam", "Rivera"}, {"Jordan", "Lee"}}
	out := make([]Owner, len(names))
	for i, n := range names {
		id := s.seq.Add(1)
		out[i] = Owner{
			ID:        strconv.FormatInt(100_000_000+id, 10),
			Email:     fmt.Sprintf("%s.%s@portal%d.example.com", strings.ToLower(n[0]), strings.ToLower(n[1]), portalID),
			FirstName: n[0],
			LastName:  n[1],
			UserID:    5_000_000 + id,
		}
	}
	return out
}

// ID is the portal (hub) id.
func (p *Portal) ID() int64 { return p.id }

// Token is the portal's private-app bearer token.
func (p *Portal) Token() string { return p.token }

// OAuth returns the portal's OAuth app (with generated fields filled in), or nil.
func (p *Portal) OAuth() *OAuthApp {
	if p.oauth == nil {
		return nil
	}
	o := *p.oauth
	return &o
}

// Owners lists the portal's owners.
func (p *Portal) Owners() []Owner {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.owners)
}

// Faults replaces the portal's fault injection.
func (p *Portal) Faults(f Faults) { p.faults.set(f) }

// Stats returns a snapshot of the portal's counters.
func (p *Portal) Stats() Stats { return p.stats.snapshot() }

// ResetStats zeroes the portal's counters.
func (p *Portal) ResetStats() { p.stats.reset() }

func (p *Portal) ownerExists(id string) bool {
	for _, o := range p.owners {
		if o.ID == id && !o.Archived {
			return true
		}
	}
	return false
}

// --- records ---------------------------------------------------------------

type record struct {
	id         int64
	createdAt  time.Time
	updatedAt  time.Time
	archived   bool
	archivedAt time.Time
	props      map[string]string // replaced, never mutated, on each change
	history    []snapshot        // versions for the lagging search index
}

type snapshot struct {
	at        time.Time
	props     map[string]string
	archived  bool
	updatedAt time.Time
}

// store holds one object type's records in one portal.
type store struct {
	kind   *objectKind
	recs   map[int64]*record
	ids    []int64                     // ascending, archived included
	unique map[string]map[string]int64 // property -> lower(value) -> live record id
}

func newStore(k *objectKind) *store {
	return &store{kind: k, recs: map[int64]*record{}, unique: map[string]map[string]int64{}}
}

func (st *store) live(id int64) (*record, bool) {
	r, ok := st.recs[id]
	if !ok || r.archived {
		return nil, false
	}
	return r, true
}

// uniqueProps lists the properties whose values must be unique.
func (p *Portal) uniqueProps(k *objectKind) []string {
	var out []string
	if k.name == Contacts {
		out = append(out, "email")
	}
	for _, d := range p.props[k.name].defs {
		if d.HasUniqueValue && !d.Archived {
			out = append(out, d.Name)
		}
	}
	return out
}

// lookupUnique finds the live record holding value for a unique property.
func (st *store) lookupUnique(prop, value string) (int64, bool) {
	id, ok := st.unique[prop][strings.ToLower(value)]
	return id, ok
}

// conflict reports a unique property of props already held by another record.
func (p *Portal) conflict(st *store, props map[string]string, self int64) (prop string, existing int64, found bool) {
	for _, u := range p.uniqueProps(st.kind) {
		v := props[u]
		if v == "" {
			continue
		}
		if id, ok := st.lookupUnique(u, v); ok && id != self {
			return u, id, true
		}
	}
	return "", 0, false
}

func conflictError(k *objectKind, prop string, existing int64) *apiError {
	if k.name == Contacts && prop == "email" {
		return newAPIError(409, "CONFLICT", fmt.Sprintf("Contact already exists. Existing ID: %d", existing))
	}
	return newAPIError(409, "CONFLICT", fmt.Sprintf("%s already exists with the same value for unique property %s. Existing ID: %d", k.label, prop, existing))
}

func (p *Portal) indexUnique(st *store, r *record, old map[string]string) {
	for _, u := range p.uniqueProps(st.kind) {
		if ov := old[u]; ov != "" {
			if st.unique[u][strings.ToLower(ov)] == r.id {
				delete(st.unique[u], strings.ToLower(ov))
			}
		}
		if r.archived {
			continue
		}
		if nv := r.props[u]; nv != "" {
			if st.unique[u] == nil {
				st.unique[u] = map[string]int64{}
			}
			st.unique[u][strings.ToLower(nv)] = r.id
		}
	}
}

// snapshotLocked records the record's new version for the lagging index.
func (p *Portal) snapshotLocked(r *record, now time.Time) {
	lag := p.s.opts.SearchIndexLag
	if lag <= 0 {
		return
	}
	r.history = append(r.history, snapshot{at: now, props: r.props, archived: r.archived, updatedAt: r.updatedAt})
	// Keep the newest version already visible plus all newer ones.
	visible := now.Add(-lag)
	keepFrom := 0
	for i, h := range r.history {
		if !h.at.After(visible) {
			keepFrom = i
		}
	}
	if keepFrom > 0 {
		r.history = append(r.history[:0], r.history[keepFrom:]...)
	}
}

// indexedView is what the search index holds for a record at time now.
func (p *Portal) indexedView(r *record, now time.Time) (snapshot, bool) {
	lag := p.s.opts.SearchIndexLag
	if lag <= 0 {
		return snapshot{at: r.updatedAt, props: r.props, archived: r.archived, updatedAt: r.updatedAt}, true
	}
	visible := now.Add(-lag)
	for i := len(r.history) - 1; i >= 0; i-- {
		if !r.history[i].at.After(visible) {
			return r.history[i], true
		}
	}
	return snapshot{}, false
}

// derive recomputes the properties HubSpot calculates from others.
func derive(k *objectKind, props map[string]string) {
	switch k.name {
	case Contacts:
		if e := props["email"]; e != "" {
			props["hs_email_domain"] = e[strings.LastIndex(e, "@")+1:]
		} else {
			delete(props, "hs_email_domain")
		}
	case Deals:
		switch props["dealstage"] {
		case "closedwon", "closedlost":
			props["hs_is_closed"] = "true"
		default:
			props["hs_is_closed"] = "false"
		}
	}
}

// createLocked stores a new record with already validated properties.
func (p *Portal) createLocked(st *store, props map[string]string, now time.Time, src source, ch *changes) *record {
	k := st.kind
	p.nextID++
	id := p.nextID
	vals := make(map[string]string, len(props)+6)
	for name, v := range props {
		if v != "" {
			vals[name] = v
		}
	}
	idStr := strconv.FormatInt(id, 10)
	vals["hs_object_id"] = idStr
	if vals[k.createdProp] == "" {
		vals[k.createdProp] = formatTime(now)
	}
	if vals[k.modifiedProp] == "" {
		vals[k.modifiedProp] = formatTime(now)
	}
	switch k.name {
	case Companies:
		vals["num_associated_contacts"], vals["num_associated_deals"] = "0", "0"
	case Contacts:
		vals["num_associated_deals"] = "0"
	case Deals:
		vals["num_associated_contacts"] = "0"
	}
	derive(k, vals)
	created, _ := parseDateTime(vals[k.createdProp])
	modified, _ := parseDateTime(vals[k.modifiedProp])
	r := &record{id: id, createdAt: created, updatedAt: modified, props: vals}
	st.recs[id] = r
	st.ids = append(st.ids, id)
	p.indexUnique(st, r, nil)
	p.snapshotLocked(r, now)
	if ch != nil {
		ch.add(change{kind: "creation", object: k, objectID: id, at: now, src: src})
		for _, name := range slices.Sorted(maps.Keys(props)) {
			if props[name] != "" {
				ch.add(change{kind: "propertyChange", object: k, objectID: id, at: now, src: src, prop: name, value: props[name]})
			}
		}
	}
	return r
}

// afterWriteLocked applies the side effects of written properties: an
// associatedcompanyid makes that company the contact's primary company.
func (p *Portal) afterWriteLocked(k *objectKind, r *record, written map[string]string, now time.Time, src source, ch *changes) {
	if k.name == Contacts && written["associatedcompanyid"] != "" {
		p.setPrimaryCompanyLocked(r, written["associatedcompanyid"], now, src, ch)
	}
}

// updateLocked applies validated changes ("" clears) and reports whether
// anything changed; a change stamps the last-modified property with now.
func (p *Portal) updateLocked(st *store, r *record, changesIn map[string]string, now time.Time, src source, ch *changes) bool {
	k := st.kind
	old := r.props
	next := maps.Clone(old)
	var changed []string
	for _, name := range slices.Sorted(maps.Keys(changesIn)) {
		v := changesIn[name]
		if old[name] == v {
			continue
		}
		if v == "" {
			delete(next, name)
		} else {
			next[name] = v
		}
		changed = append(changed, name)
	}
	if len(changed) == 0 {
		return false
	}
	derive(k, next)
	next[k.modifiedProp] = formatTime(now)
	r.props = next
	r.updatedAt = now
	p.indexUnique(st, r, old)
	p.snapshotLocked(r, now)
	if ch != nil {
		for _, name := range changed {
			ch.add(change{kind: "propertyChange", object: k, objectID: r.id, at: now, src: src, prop: name, value: next[name]})
		}
	}
	return true
}

// archiveLocked deletes (archives) a record and its associations.
func (p *Portal) archiveLocked(st *store, r *record, now time.Time, src source, ch *changes) {
	k := st.kind
	old := r.props
	p.removeAllAssociationsLocked(k, r.id, now, src, ch)
	r.archived = true
	r.archivedAt = now
	p.indexUnique(st, r, old)
	p.snapshotLocked(r, now)
	for _, l := range p.lists {
		if l.objectTypeID == k.typeID {
			delete(l.members, r.id)
		}
	}
	if ch != nil {
		ch.add(change{kind: "deletion", object: k, objectID: r.id, at: now, src: src})
	}
}

// setComputedLocked writes calculated values (association counts, primary
// company), bumping the modified date when they change.
func (p *Portal) setComputedLocked(k *objectKind, id int64, vals map[string]string, now time.Time, src source, ch *changes) {
	st := p.stores[k.name]
	r, ok := st.live(id)
	if !ok {
		return
	}
	p.updateLocked(st, r, vals, now, src, ch)
}

func parseID(s string) (int64, bool) {
	id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return id, err == nil && id > 0
}

func (p *Portal) kind(objectType string) (*objectKind, *store, error) {
	k, ok := p.s.kinds.lookup(objectType)
	if !ok {
		return nil, nil, fmt.Errorf("unknown object type %q (want contacts, companies, deals, tasks or notes)", objectType)
	}
	return k, p.stores[k.name], nil
}

// --- test helpers ------------------------------------------------------------

// Object returns a live record's properties.
func (p *Portal) Object(objectType, id string) (map[string]string, bool) {
	_, st, err := p.kind(objectType)
	if err != nil {
		return nil, false
	}
	n, ok := parseID(id)
	if !ok {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := st.live(n)
	if !ok {
		return nil, false
	}
	return maps.Clone(r.props), true
}

// Count returns the number of live (not archived) records of a type.
func (p *Portal) Count(objectType string) int {
	_, st, err := p.kind(objectType)
	if err != nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range st.recs {
		if !r.archived {
			n++
		}
	}
	return n
}

// IDs lists the live record ids of a type in ascending order.
func (p *Portal) IDs(objectType string) []string {
	_, st, err := p.kind(objectType)
	if err != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, id := range st.ids {
		if !st.recs[id].archived {
			out = append(out, strconv.FormatInt(id, 10))
		}
	}
	return out
}

// UIEdit simulates a user editing a record in HubSpot's UI: the values are
// validated like API writes, the last-modified date moves, and webhooks fire
// with changeSource CRM_UI.
func (p *Portal) UIEdit(objectType, id string, props map[string]string) error {
	return p.uiWrite(objectType, []string{id}, props, "CRM_UI")
}

// BulkEdit simulates a bulk edit in HubSpot's UI: every record gets the same
// values and ONE shared last-modified timestamp (changeSource
// CRM_UI_BULK_ACTION).
func (p *Portal) BulkEdit(objectType string, ids []string, props map[string]string) error {
	return p.uiWrite(objectType, ids, props, "CRM_UI_BULK_ACTION")
}

func (p *Portal) uiWrite(objectType string, ids []string, props map[string]string, changeSource string) error {
	k, st, err := p.kind(objectType)
	if err != nil {
		return fmt.Errorf("ui edit: %w", err)
	}
	ch := &changes{}
	p.mu.Lock()
	vals, issues := p.checkProps(k, props)
	if len(issues) > 0 {
		p.mu.Unlock()
		return fmt.Errorf("ui edit %s: %s", objectType, issuesMessage(p.id, issues))
	}
	if len(ids) > 1 {
		for _, u := range p.uniqueProps(k) {
			if vals[u] != "" {
				p.mu.Unlock()
				return fmt.Errorf("ui edit %s: cannot set unique property %s on %d records", objectType, u, len(ids))
			}
		}
	}
	recs := make([]*record, 0, len(ids))
	for i, id := range ids {
		n, ok := parseID(id)
		r, live := st.live(n)
		if !ok || !live {
			p.mu.Unlock()
			return fmt.Errorf("ui edit %s: ids[%d] = %q: no such record", objectType, i, id)
		}
		if prop, existing, dup := p.conflict(st, vals, n); dup {
			p.mu.Unlock()
			return fmt.Errorf("ui edit %s: ids[%d] = %q: %s already held by %d", objectType, i, id, prop, existing)
		}
		recs = append(recs, r)
	}
	now := p.s.now()
	src := source{change: changeSource, id: "userId:" + strconv.FormatInt(p.firstUserID(), 10)}
	for _, r := range recs {
		changed := p.updateLocked(st, r, vals, now, src, ch)
		p.afterWriteLocked(k, r, vals, now, src, ch)
		if !changed {
			// A bulk edit stamps every selected record, changed or not.
			next := maps.Clone(r.props)
			next[k.modifiedProp] = formatTime(now)
			r.props, r.updatedAt = next, now
			p.snapshotLocked(r, now)
		}
	}
	p.mu.Unlock()
	p.s.publish(p, ch)
	return nil
}

func (p *Portal) firstUserID() int64 {
	if len(p.owners) == 0 {
		return 0
	}
	return p.owners[0].UserID
}

// Seed creates records of any type without going through the API: no rate
// limits, no webhooks, no validation (unknown properties are stored as
// given). createdate and the last-modified property may be set to backdate
// records. It returns the new ids in order.
func (p *Portal) Seed(objectType string, records ...map[string]string) []string {
	k, st, err := p.kind(objectType)
	if err != nil {
		p.s.log.Warn("hubspottest: seed", "err", err)
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.s.now()
	ids := make([]string, 0, len(records))
	for _, props := range records {
		vals := make(map[string]string, len(props))
		for name, v := range props {
			if def, ok := p.props[k.name].get(name); ok && v != "" {
				if nv, issue := p.normalizeValue(k, def, v); issue == nil {
					v = nv
				}
			}
			vals[name] = v
		}
		r := p.createLocked(st, vals, now, source{}, nil)
		p.settleLocked(k, r, "")
		ids = append(ids, strconv.FormatInt(r.id, 10))
	}
	return ids
}

// SeedCompanies seeds companies; see Seed.
func (p *Portal) SeedCompanies(records ...map[string]string) []string {
	return p.Seed(Companies, records...)
}

// SeedContacts seeds contacts; see Seed.
func (p *Portal) SeedContacts(records ...map[string]string) []string {
	return p.Seed(Contacts, records...)
}

// SeedDeals seeds deals; see Seed.
func (p *Portal) SeedDeals(records ...map[string]string) []string {
	return p.Seed(Deals, records...)
}

// Associate creates the default association between two records (both
// directions), without webhooks, like a seed.
func (p *Portal) Associate(fromType, fromID, toType, toID string) error {
	fk, fst, err := p.kind(fromType)
	if err != nil {
		return fmt.Errorf("associate: %w", err)
	}
	tk, tst, err := p.kind(toType)
	if err != nil {
		return fmt.Errorf("associate: %w", err)
	}
	typeID, ok := p.s.atypes.defaults[[2]string{fk.name, tk.name}]
	if !ok {
		return fmt.Errorf("associate: no association type from %s to %s", fk.name, tk.name)
	}
	fid, ok1 := parseID(fromID)
	tid, ok2 := parseID(toID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, live := fst.live(fid); !ok1 || !live {
		return fmt.Errorf("associate: %s %q does not exist", fk.name, fromID)
	}
	if _, live := tst.live(tid); !ok2 || !live {
		return fmt.Errorf("associate: %s %q does not exist", tk.name, toID)
	}
	p.associateLocked(fk, fid, tk, tid, []int{typeID}, p.s.now(), source{}, nil)
	p.settleLocked(fk, fst.recs[fid], "")
	p.settleLocked(tk, tst.recs[tid], "")
	return nil
}

// settleLocked makes a seeded record immediately visible to search and,
// when modified is set, restamps its last-modified date.
func (p *Portal) settleLocked(k *objectKind, r *record, modified string) {
	if t, ok := parseDateTime(modified); ok && modified != "" {
		next := maps.Clone(r.props)
		next[k.modifiedProp] = formatTime(t)
		r.props, r.updatedAt = next, t
	}
	if p.s.opts.SearchIndexLag > 0 {
		r.history = []snapshot{{props: r.props, archived: r.archived, updatedAt: r.updatedAt}}
	}
}
