package hubspottest

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// assocKey names the association links of one record toward one object type.
type assocKey struct {
	from string
	id   int64
	to   string
}

// Batch limits of the v4 associations API: batch read has been capped at
// 100 inputs since January 2025; create and archive accept larger batches.
const (
	assocReadLimit  = 100
	assocWriteLimit = 2000
)

func (p *Portal) links(from string, id int64, to string) map[int64]map[int]struct{} {
	return p.assoc[assocKey{from: from, id: id, to: to}]
}

func (p *Portal) addType(from string, id int64, to string, toID int64, typeID int) bool {
	key := assocKey{from: from, id: id, to: to}
	m := p.assoc[key]
	if m == nil {
		m = map[int64]map[int]struct{}{}
		p.assoc[key] = m
	}
	types := m[toID]
	if types == nil {
		types = map[int]struct{}{}
		m[toID] = types
	}
	if _, ok := types[typeID]; ok {
		return false
	}
	types[typeID] = struct{}{}
	return true
}

func (p *Portal) removeTypes(from string, id int64, to string, toID int64, typeIDs []int) {
	key := assocKey{from: from, id: id, to: to}
	types := p.assoc[key][toID]
	if types == nil {
		return
	}
	if typeIDs == nil {
		delete(p.assoc[key], toID)
	} else {
		for _, t := range typeIDs {
			delete(types, t)
		}
		if len(types) == 0 {
			delete(p.assoc[key], toID)
		}
	}
	if len(p.assoc[key]) == 0 {
		delete(p.assoc, key)
	}
}

// primaryOf returns the primary company of a contact or deal.
func (p *Portal) primaryOf(k string, id int64) (int64, bool) {
	pt, ok := p.s.atypes.primaries[[2]string{k, Companies}]
	if !ok {
		return 0, false
	}
	for cid, types := range p.links(k, id, Companies) {
		if _, isPrimary := types[pt]; isPrimary {
			return cid, true
		}
	}
	return 0, false
}

// associateLocked adds association types between two live records, in both
// directions. The default (unlabeled) type is always present once the pair
// is associated; a contact's or deal's first company becomes its primary,
// and a new primary company demotes the old one.
func (p *Portal) associateLocked(fk *objectKind, fid int64, tk *objectKind, tid int64, types []int, now time.Time, src source, ch *changes) {
	at := p.s.atypes
	wasAssociated := len(p.links(fk.name, fid, tk.name)[tid]) > 0
	want := slices.Clone(types)
	if def, ok := at.defaults[[2]string{fk.name, tk.name}]; ok && !slices.Contains(want, def) {
		want = append(want, def)
	}

	// owner is the contact or deal side of a pair with a company.
	owner, ownerID, companyID := fk, fid, tid
	if fk.name == Companies {
		owner, ownerID, companyID = tk, tid, fid
	}
	if pt, ok := at.primaries[[2]string{owner.name, Companies}]; ok && (fk.name == Companies) != (tk.name == Companies) {
		ptHere := pt // the primary type in the fk -> tk direction
		if fk.name == Companies {
			ptHere = at.byID[pt].reverse
		}
		cur, has := p.primaryOf(owner.name, ownerID)
		if slices.Contains(want, ptHere) || !has {
			want = slices.DeleteFunc(want, func(t int) bool { return t == ptHere })
			if has && cur != companyID {
				p.removeTypes(owner.name, ownerID, Companies, cur, []int{pt})
				p.removeTypes(Companies, cur, owner.name, ownerID, []int{at.byID[pt].reverse})
				p.recountLocked(p.s.kindOf(Companies), cur, now, src, ch)
			}
			p.addType(owner.name, ownerID, Companies, companyID, pt)
			p.addType(Companies, companyID, owner.name, ownerID, at.byID[pt].reverse)
		}
	}
	for _, t := range want {
		p.addType(fk.name, fid, tk.name, tid, t)
		p.addType(tk.name, tid, fk.name, fid, at.byID[t].reverse)
	}
	if !wasAssociated && ch != nil {
		primary := p.isPrimaryPair(fk.name, fid, tk.name, tid)
		ch.add(change{kind: "associationChange", object: fk, objectID: fid, at: now, src: src, assocTo: tk, assocToID: tid, assocPrimary: primary})
		ch.add(change{kind: "associationChange", object: tk, objectID: tid, at: now, src: src, assocTo: fk, assocToID: fid, assocPrimary: primary})
	}
	p.recountLocked(fk, fid, now, src, ch)
	p.recountLocked(tk, tid, now, src, ch)
}

func (p *Portal) isPrimaryPair(from string, fid int64, to string, tid int64) bool {
	for t := range p.links(from, fid, to)[tid] {
		if p.s.atypes.byID[t].primary {
			return true
		}
	}
	return false
}

// disassociateLocked removes types (nil: all) between two records. Removing
// the default type removes the whole association, as in HubSpot.
func (p *Portal) disassociateLocked(fk *objectKind, fid int64, tk *objectKind, tid int64, typeIDs []int, now time.Time, src source, ch *changes) bool {
	types := p.links(fk.name, fid, tk.name)[tid]
	if len(types) == 0 {
		return false
	}
	if def, ok := p.s.atypes.defaults[[2]string{fk.name, tk.name}]; ok && slices.Contains(typeIDs, def) {
		typeIDs = nil
	}
	primary := p.isPrimaryPair(fk.name, fid, tk.name, tid)
	var reverse []int // nil removes every type, like typeIDs == nil
	if typeIDs != nil {
		reverse = make([]int, 0, len(typeIDs))
		for _, t := range typeIDs {
			reverse = append(reverse, p.s.atypes.byID[t].reverse)
		}
	}
	p.removeTypes(fk.name, fid, tk.name, tid, typeIDs)
	p.removeTypes(tk.name, tid, fk.name, fid, reverse)
	removed := len(p.links(fk.name, fid, tk.name)[tid]) == 0
	if removed && ch != nil {
		ch.add(change{kind: "associationChange", object: fk, objectID: fid, at: now, src: src, assocTo: tk, assocToID: tid, assocRemoved: true, assocPrimary: primary})
		ch.add(change{kind: "associationChange", object: tk, objectID: tid, at: now, src: src, assocTo: fk, assocToID: fid, assocRemoved: true, assocPrimary: primary})
	}
	p.recountLocked(fk, fid, now, src, ch)
	p.recountLocked(tk, tid, now, src, ch)
	return true
}

// removeAllAssociationsLocked drops every association of a record being archived.
func (p *Portal) removeAllAssociationsLocked(k *objectKind, id int64, now time.Time, src source, ch *changes) {
	for _, other := range p.s.kinds.all {
		for _, tid := range slices.Sorted(maps.Keys(p.links(k.name, id, other.name))) {
			p.disassociateLocked(k, id, other, tid, nil, now, src, ch)
		}
	}
}

// recountLocked refreshes the association-derived properties of a record.
func (p *Portal) recountLocked(k *objectKind, id int64, now time.Time, src source, ch *changes) {
	count := func(to string) string { return strconv.Itoa(len(p.links(k.name, id, to))) }
	vals := map[string]string{}
	switch k.name {
	case Companies:
		vals["num_associated_contacts"] = count(Contacts)
		vals["num_associated_deals"] = count(Deals)
	case Contacts:
		vals["num_associated_deals"] = count(Deals)
		if cid, ok := p.primaryOf(Contacts, id); ok {
			vals["associatedcompanyid"] = strconv.FormatInt(cid, 10)
		} else {
			vals["associatedcompanyid"] = ""
		}
	case Deals:
		vals["num_associated_contacts"] = count(Contacts)
	default:
		return
	}
	p.setComputedLocked(k, id, vals, now, src, ch)
}

// setPrimaryCompanyLocked applies a written associatedcompanyid.
func (p *Portal) setPrimaryCompanyLocked(contact *record, companyID string, now time.Time, src source, ch *changes) {
	cid, ok := parseID(companyID)
	if !ok {
		return
	}
	if _, live := p.stores[Companies].live(cid); !live {
		return
	}
	pt := p.s.atypes.primaries[[2]string{Contacts, Companies}]
	p.associateLocked(p.s.kindOf(Contacts), contact.id, p.s.kindOf(Companies), cid, []int{pt}, now, src, ch)
}

func (s *Server) kindOf(name string) *objectKind {
	k, _ := s.kinds.lookup(name)
	return k
}

// --- wire types --------------------------------------------------------------

type objectID struct {
	ID flexString `json:"id"`
}

type assocSpec struct {
	AssociationCategory string `json:"associationCategory"`
	AssociationTypeID   int    `json:"associationTypeId"`
}

type assocSpecWithLabel struct {
	Category string `json:"category"`
	TypeID   int    `json:"typeId"`
	Label    string `json:"label,omitempty"`
}

type labelsBetween struct {
	FromObjectTypeID string   `json:"fromObjectTypeId"`
	FromObjectID     string   `json:"fromObjectId"`
	ToObjectTypeID   string   `json:"toObjectTypeId"`
	ToObjectID       string   `json:"toObjectId"`
	Labels           []string `json:"labels"`
}

type defaultAssoc struct {
	From            objectID  `json:"from"`
	To              objectID  `json:"to"`
	AssociationSpec assocSpec `json:"associationSpec"`
}

type multiAssociated struct {
	ToObjectID       string               `json:"toObjectId"`
	AssociationTypes []assocSpecWithLabel `json:"associationTypes"`
}

type pagingNext struct {
	After string `json:"after"`
	Link  string `json:"link,omitempty"`
}

type paging struct {
	Next *pagingNext `json:"next,omitempty"`
}

func pagingAfter(after string) *paging {
	if after == "" {
		return nil
	}
	return &paging{Next: &pagingNext{After: after}}
}

type batchEnvelope struct {
	Status      string          `json:"status"`
	Results     any             `json:"results"`
	NumErrors   int             `json:"numErrors,omitempty"`
	Errors      []standardError `json:"errors,omitempty"`
	RequestedAt string          `json:"requestedAt,omitempty"`
	StartedAt   string          `json:"startedAt"`
	CompletedAt string          `json:"completedAt"`
}

func (s *Server) writeBatch(w http.ResponseWriter, okStatus int, started time.Time, results any, errs []standardError) {
	env := batchEnvelope{Status: "COMPLETE", Results: results, StartedAt: formatTime(started), CompletedAt: formatTime(s.now())}
	status := okStatus
	if len(errs) > 0 {
		env.NumErrors, env.Errors = len(errs), errs
		status = http.StatusMultiStatus
	}
	writeJSON(w, status, env)
}

// --- handlers ------------------------------------------------------------------

func (p *Portal) assocKinds(fromType, toType string) (*objectKind, *objectKind, *apiError) {
	fk, ok := p.s.kinds.lookup(fromType)
	if !ok {
		return nil, nil, validationError("Unknown object type %q", fromType)
	}
	tk, ok := p.s.kinds.lookup(toType)
	if !ok {
		return nil, nil, validationError("Unknown object type %q", toType)
	}
	if _, ok := p.s.atypes.defaults[[2]string{fk.name, tk.name}]; !ok {
		return nil, nil, validationError("There are no association types from %s to %s", fk.name, tk.name)
	}
	return fk, tk, nil
}

// checkTypes verifies association specs for a pair of object types.
func (p *Portal) checkTypes(fk, tk *objectKind, specs []assocSpec) ([]int, *apiError) {
	if len(specs) == 0 {
		return nil, validationError("types: at least one association type is required")
	}
	out := make([]int, 0, len(specs))
	for i, sp := range specs {
		t, ok := p.s.atypes.byID[sp.AssociationTypeID]
		if !ok || t.from != fk.name || t.to != tk.name {
			return nil, validationError("types[%d]: association type id %d is not defined from %s to %s", i, sp.AssociationTypeID, fk.name, tk.name)
		}
		if sp.AssociationCategory != "" && sp.AssociationCategory != t.category {
			return nil, validationError("types[%d]: association type id %d has category %s, not %s", i, sp.AssociationTypeID, t.category, sp.AssociationCategory)
		}
		out = append(out, t.id)
	}
	return out, nil
}

func (p *Portal) labelsOf(fk *objectKind, fid int64, tk *objectKind, tid int64) labelsBetween {
	lb := labelsBetween{FromObjectTypeID: fk.typeID, FromObjectID: strconv.FormatInt(fid, 10), ToObjectTypeID: tk.typeID, ToObjectID: strconv.FormatInt(tid, 10), Labels: []string{}}
	for _, t := range slices.Sorted(maps.Keys(p.links(fk.name, fid, tk.name)[tid])) {
		if l := p.s.atypes.byID[t].label; l != "" && !slices.Contains(lb.Labels, l) {
			lb.Labels = append(lb.Labels, l)
		}
	}
	return lb
}

func (p *Portal) specsOf(fk *objectKind, fid int64, tk *objectKind, tid int64) []assocSpecWithLabel {
	var out []assocSpecWithLabel
	for _, t := range slices.Sorted(maps.Keys(p.links(fk.name, fid, tk.name)[tid])) {
		typ := p.s.atypes.byID[t]
		out = append(out, assocSpecWithLabel{Category: typ.category, TypeID: typ.id, Label: typ.label})
	}
	return out
}

// PUT /crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}
func (s *Server) putDefaultAssociation(c *call, w http.ResponseWriter, r *http.Request) {
	p := c.p
	started := s.now()
	fk, tk, aerr := p.assocKinds(r.PathValue("fromObjectType"), r.PathValue("toObjectType"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	ch := &changes{}
	p.mu.Lock()
	fid, tid, aerr := p.livePair(fk, r.PathValue("fromObjectId"), tk, r.PathValue("toObjectId"))
	if aerr != nil {
		p.mu.Unlock()
		writeError(w, aerr)
		return
	}
	def := s.atypes.defaults[[2]string{fk.name, tk.name}]
	p.associateLocked(fk, fid, tk, tid, []int{def}, s.now(), c.source(), ch)
	p.mu.Unlock()
	s.publish(p, ch)
	results := []defaultAssoc{
		{From: objectID{ID: flexString(strconv.FormatInt(fid, 10))}, To: objectID{ID: flexString(strconv.FormatInt(tid, 10))}, AssociationSpec: assocSpec{AssociationCategory: "HUBSPOT_DEFINED", AssociationTypeID: def}},
		{From: objectID{ID: flexString(strconv.FormatInt(tid, 10))}, To: objectID{ID: flexString(strconv.FormatInt(fid, 10))}, AssociationSpec: assocSpec{AssociationCategory: "HUBSPOT_DEFINED", AssociationTypeID: s.atypes.byID[def].reverse}},
	}
	s.writeBatch(w, http.StatusOK, started, results, nil)
}

func (p *Portal) livePair(fk *objectKind, fromID string, tk *objectKind, toID string) (int64, int64, *apiError) {
	fid, ok := parseID(fromID)
	if _, live := p.stores[fk.name].live(fid); !ok || !live {
		return 0, 0, notFoundError("%s %s does not exist.", fk.label, fromID).withContext("id", fromID)
	}
	tid, ok := parseID(toID)
	if _, live := p.stores[tk.name].live(tid); !ok || !live {
		return 0, 0, notFoundError("%s %s does not exist.", tk.label, toID).withContext("id", toID)
	}
	return fid, tid, nil
}

// PUT /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}
func (s *Server) putLabelledAssociation(c *call, w http.ResponseWriter, r *http.Request) {
	p := c.p
	fk, tk, aerr := p.assocKinds(r.PathValue("objectType"), r.PathValue("toObjectType"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var specs []assocSpec
	if aerr := decodeJSON(r, &specs); aerr != nil {
		writeError(w, aerr)
		return
	}
	types, aerr := p.checkTypes(fk, tk, specs)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	ch := &changes{}
	p.mu.Lock()
	fid, tid, aerr := p.livePair(fk, r.PathValue("objectId"), tk, r.PathValue("toObjectId"))
	if aerr != nil {
		p.mu.Unlock()
		writeError(w, aerr)
		return
	}
	p.associateLocked(fk, fid, tk, tid, types, s.now(), c.source(), ch)
	out := p.labelsOf(fk, fid, tk, tid)
	p.mu.Unlock()
	s.publish(p, ch)
	writeJSON(w, http.StatusCreated, out)
}

// DELETE /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}
func (s *Server) deleteAssociation(c *call, w http.ResponseWriter, r *http.Request) {
	p := c.p
	fk, tk, aerr := p.assocKinds(r.PathValue("objectType"), r.PathValue("toObjectType"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	fid, ok1 := parseID(r.PathValue("objectId"))
	tid, ok2 := parseID(r.PathValue("toObjectId"))
	if !ok1 || !ok2 {
		writeError(w, validationError("object ids must be positive integers"))
		return
	}
	ch := &changes{}
	p.mu.Lock()
	p.disassociateLocked(fk, fid, tk, tid, nil, s.now(), c.source(), ch)
	p.mu.Unlock()
	s.publish(p, ch)
	w.WriteHeader(http.StatusNoContent)
}

// GET /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}
func (s *Server) listAssociations(c *call, w http.ResponseWriter, r *http.Request) {
	p := c.p
	fk, tk, aerr := p.assocKinds(r.PathValue("objectType"), r.PathValue("toObjectType"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	limit, aerr := intParam(r, "limit", 500, 1, 500)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	after := int64(0)
	if a := r.URL.Query().Get("after"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			writeError(w, validationError("after: %q is not a valid paging cursor", a))
			return
		}
		after = n
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fid, ok := parseID(r.PathValue("objectId"))
	if _, live := p.stores[fk.name].live(fid); !ok || !live {
		writeError(w, notFoundError("%s %s does not exist.", fk.label, r.PathValue("objectId")))
		return
	}
	ids := slices.Sorted(maps.Keys(p.links(fk.name, fid, tk.name)))
	results := []multiAssociated{}
	next := ""
	for _, tid := range ids {
		if tid <= after {
			continue
		}
		if len(results) == limit {
			next = strconv.FormatInt(results[len(results)-1].toID(), 10)
			break
		}
		results = append(results, multiAssociated{ToObjectID: strconv.FormatInt(tid, 10), AssociationTypes: p.specsOf(fk, fid, tk, tid)})
	}
	writeJSON(w, http.StatusOK, struct {
		Results []multiAssociated `json:"results"`
		Paging  *paging           `json:"paging,omitempty"`
	}{results, pagingAfter(next)})
}

func (m multiAssociated) toID() int64 {
	n, _ := strconv.ParseInt(m.ToObjectID, 10, 64)
	return n
}

type assocMultiPost struct {
	From  objectID    `json:"from"`
	To    objectID    `json:"to"`
	Types []assocSpec `json:"types"`
}

// POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/create
func (s *Server) batchCreateAssociations(c *call, w http.ResponseWriter, r *http.Request) {
	p := c.p
	started := s.now()
	fk, tk, aerr := p.assocKinds(r.PathValue("fromObjectType"), r.PathValue("toObjectType"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var body struct {
		Inputs []assocMultiPost `json:"inputs"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := checkBatchSize(len(body.Inputs), assocWriteLimit); aerr != nil {
		writeError(w, aerr)
		return
	}
	p.stats.batchInputs(c.pattern, len(body.Inputs))
	ch := &changes{}
	results := []labelsBetween{}
	var errs []standardError
	p.mu.Lock()
	now := s.now()
	for i, in := range body.Inputs {
		types, aerr := p.checkTypes(fk, tk, in.Types)
		if aerr != nil {
			errs = append(errs, newStandardError("VALIDATION_ERROR", fmt.Sprintf("inputs[%d]: %s", i, aerr.body.Message), map[string][]string{"fromObjectId": {string(in.From.ID)}, "toObjectId": {string(in.To.ID)}}))
			continue
		}
		fid, tid, aerr := p.livePair(fk, string(in.From.ID), tk, string(in.To.ID))
		if aerr != nil {
			errs = append(errs, newStandardError("OBJECT_NOT_FOUND", fmt.Sprintf("inputs[%d]: %s", i, aerr.body.Message), map[string][]string{"fromObjectId": {string(in.From.ID)}, "toObjectId": {string(in.To.ID)}}))
			continue
		}
		p.associateLocked(fk, fid, tk, tid, types, now, c.source(), ch)
		results = append(results, p.labelsOf(fk, fid, tk, tid))
	}
	p.mu.Unlock()
	s.publish(p, ch)
	s.writeBatch(w, http.StatusCreated, started, results, errs)
}

// POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/associate/default
func (s *Server) batchAssociateDefault(c *call, w http.ResponseWriter, r *http.Request) {
	p := c.p
	started := s.now()
	fk, tk, aerr := p.assocKinds(r.PathValue("fromObjectType"), r.PathValue("toObjectType"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var body struct {
		Inputs []struct {
			From objectID `json:"from"`
			To   objectID `json:"to"`
		} `json:"inputs"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := checkBatchSize(len(body.Inputs), assocWriteLimit); aerr != nil {
		writeError(w, aerr)
		return
	}
	p.stats.batchInputs(c.pattern, len(body.Inputs))
	def := s.atypes.defaults[[2]string{fk.name, tk.name}]
	ch := &changes{}
	results := []defaultAssoc{}
	var errs []standardError
	p.mu.Lock()
	now := s.now()
	for i, in := range body.Inputs {
		fid, tid, aerr := p.livePair(fk, string(in.From.ID), tk, string(in.To.ID))
		if aerr != nil {
			errs = append(errs, newStandardError("OBJECT_NOT_FOUND", fmt.Sprintf("inputs[%d]: %s", i, aerr.body.Message), map[string][]string{"fromObjectId": {string(in.From.ID)}, "toObjectId": {string(in.To.ID)}}))
			continue
		}
		p.associateLocked(fk, fid, tk, tid, []int{def}, now, c.source(), ch)
		results = append(results, defaultAssoc{From: in.From, To: in.To, AssociationSpec: assocSpec{AssociationCategory: "HUBSPOT_DEFINED", AssociationTypeID: def}})
	}
	p.mu.Unlock()
	s.publish(p, ch)
	s.writeBatch(w, http.StatusOK, started, results, errs)
}

// POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read
func (s *Server) batchReadAssociations(c *call, w http.ResponseWriter, r *http.Request) {
	p := c.p
	started := s.now()
	fk, tk, aerr := p.assocKinds(r.PathValue("fromObjectType"), r.PathValue("toObjectType"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var body struct {
		Inputs []struct {
			ID    flexString `json:"id"`
			After string     `json:"after"`
		} `json:"inputs"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := checkBatchSize(len(body.Inputs), assocReadLimit); aerr != nil {
		writeError(w, aerr)
		return
	}
	p.stats.batchInputs(c.pattern, len(body.Inputs))
	type multiWithLabel struct {
		From objectID          `json:"from"`
		To   []multiAssociated `json:"to"`
	}
	results := []multiWithLabel{}
	var errs []standardError
	p.mu.Lock()
	for _, in := range body.Inputs {
		fid, ok := parseID(string(in.ID))
		links := p.links(fk.name, fid, tk.name)
		if _, live := p.stores[fk.name].live(fid); !ok || !live || len(links) == 0 {
			errs = append(errs, newStandardError("OBJECT_NOT_FOUND",
				fmt.Sprintf("No %s is associated with %s %s.", tk.name, fk.name, in.ID),
				map[string][]string{"fromObjectId": {string(in.ID)}}))
			continue
		}
		res := multiWithLabel{From: objectID{ID: in.ID}, To: []multiAssociated{}}
		for _, tid := range slices.Sorted(maps.Keys(links)) {
			res.To = append(res.To, multiAssociated{ToObjectID: strconv.FormatInt(tid, 10), AssociationTypes: p.specsOf(fk, fid, tk, tid)})
		}
		results = append(results, res)
	}
	p.mu.Unlock()
	s.writeBatch(w, http.StatusOK, started, results, errs)
}

// POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/archive
func (s *Server) batchArchiveAssociations(c *call, w http.ResponseWriter, r *http.Request) {
	p := c.p
	fk, tk, aerr := p.assocKinds(r.PathValue("fromObjectType"), r.PathValue("toObjectType"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var body struct {
		Inputs []struct {
			From objectID   `json:"from"`
			To   []objectID `json:"to"`
		} `json:"inputs"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := checkBatchSize(len(body.Inputs), assocWriteLimit); aerr != nil {
		writeError(w, aerr)
		return
	}
	p.stats.batchInputs(c.pattern, len(body.Inputs))
	ch := &changes{}
	p.mu.Lock()
	now := s.now()
	for _, in := range body.Inputs {
		fid, ok := parseID(string(in.From.ID))
		if !ok {
			continue
		}
		for _, to := range in.To {
			if tid, ok := parseID(string(to.ID)); ok {
				p.disassociateLocked(fk, fid, tk, tid, nil, now, c.source(), ch)
			}
		}
	}
	p.mu.Unlock()
	s.publish(p, ch)
	w.WriteHeader(http.StatusNoContent)
}

// POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/labels/archive
func (s *Server) batchArchiveLabels(c *call, w http.ResponseWriter, r *http.Request) {
	p := c.p
	fk, tk, aerr := p.assocKinds(r.PathValue("fromObjectType"), r.PathValue("toObjectType"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var body struct {
		Inputs []assocMultiPost `json:"inputs"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := checkBatchSize(len(body.Inputs), assocWriteLimit); aerr != nil {
		writeError(w, aerr)
		return
	}
	p.stats.batchInputs(c.pattern, len(body.Inputs))
	for i, in := range body.Inputs {
		if _, aerr := p.checkTypes(fk, tk, in.Types); aerr != nil {
			writeError(w, validationError("inputs[%d]: %s", i, aerr.body.Message))
			return
		}
	}
	ch := &changes{}
	p.mu.Lock()
	now := s.now()
	for _, in := range body.Inputs {
		fid, ok1 := parseID(string(in.From.ID))
		tid, ok2 := parseID(string(in.To.ID))
		if !ok1 || !ok2 {
			continue
		}
		types, _ := p.checkTypes(fk, tk, in.Types)
		p.disassociateLocked(fk, fid, tk, tid, types, now, c.source(), ch)
	}
	p.mu.Unlock()
	s.publish(p, ch)
	w.WriteHeader(http.StatusNoContent)
}

// GET /crm/v4/associations/{fromObjectType}/{toObjectType}/labels
func (s *Server) listAssociationLabels(c *call, w http.ResponseWriter, r *http.Request) {
	fk, tk, aerr := c.p.assocKinds(r.PathValue("fromObjectType"), r.PathValue("toObjectType"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	types := s.atypes.between(fk.name, tk.name)
	slices.SortFunc(types, func(a, b assocType) int { return a.id - b.id })
	out := make([]assocSpecWithLabel, len(types))
	for i, t := range types {
		out[i] = assocSpecWithLabel{Category: t.category, TypeID: t.id, Label: t.label}
	}
	writeJSON(w, http.StatusOK, struct {
		Results []assocSpecWithLabel `json:"results"`
	}{out})
}
