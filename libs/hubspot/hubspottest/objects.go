package hubspottest

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// batchLimit is the maximum number of inputs of the objects batch endpoints.
const batchLimit = 100

// historyBatchLimit is the batch read limit when propertiesWithHistory is set.
const historyBatchLimit = 50

// checkBatchSize rejects batches over limit with HubSpot's message.
func checkBatchSize(n, limit int) *apiError {
	if n > limit {
		return validationError("The maximum number of inputs supported in a batch request is %d. Please reduce the number of items and try again", limit).
			withContext("inputs", strconv.Itoa(n))
	}
	return nil
}

// objectWire is SimplePublicObject / SimplePublicObjectWithAssociations /
// SimplePublicUpsertObject.
type objectWire struct {
	ID                    string                          `json:"id"`
	Properties            map[string]string               `json:"properties"`
	PropertiesWithHistory map[string][]valueWithTimestamp `json:"propertiesWithHistory,omitempty"`
	CreatedAt             string                          `json:"createdAt"`
	UpdatedAt             string                          `json:"updatedAt"`
	Archived              bool                            `json:"archived"`
	ArchivedAt            string                          `json:"archivedAt,omitempty"`
	Associations          map[string]associatedIDs        `json:"associations,omitempty"`
	ObjectWriteTraceID    string                          `json:"objectWriteTraceId,omitempty"`
	New                   *bool                           `json:"new,omitempty"`
}

type valueWithTimestamp struct {
	Value      string `json:"value"`
	Timestamp  string `json:"timestamp"`
	SourceType string `json:"sourceType"`
}

type associatedID struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

type associatedIDs struct {
	Results []associatedID `json:"results"`
}

// readOpts says which properties a read returns.
type readOpts struct {
	props        []string
	withHistory  []string
	associations []string
}

// updatedProps is what an update answers with: the properties written (as
// HubSpot's update examples show: the response echoes the request's
// properties), plus hs_object_id and the create and modify dates that
// selectProps adds to every named read; not the record's other properties.
func updatedProps(written map[string]string) readOpts {
	return readOpts{props: slices.Collect(maps.Keys(written))}
}

// selectProps picks the properties to return: the requested ones that have
// values plus hs_object_id and the create/modify dates, or the object type's
// defaults when none were requested.
func selectProps(k *objectKind, vals map[string]string, requested []string) map[string]string {
	names := requested
	if len(names) == 0 {
		names = k.defaultProps
	} else {
		names = append(slices.Clone(names), "hs_object_id", k.createdProp, k.modifiedProp)
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		if v, ok := vals[n]; ok && v != "" {
			out[n] = v
		}
	}
	return out
}

func (p *Portal) wireObject(k *objectKind, id int64, view snapshot, createdAt time.Time, archivedAt time.Time, ro readOpts) objectWire {
	o := objectWire{
		ID:         strconv.FormatInt(id, 10),
		Properties: selectProps(k, view.props, ro.props),
		CreatedAt:  formatTime(createdAt),
		UpdatedAt:  formatTime(view.updatedAt),
		Archived:   view.archived,
	}
	if view.archived {
		o.ArchivedAt = formatTime(archivedAt)
	}
	if len(ro.withHistory) > 0 {
		o.PropertiesWithHistory = map[string][]valueWithTimestamp{}
		for _, n := range ro.withHistory {
			if v := view.props[n]; v != "" {
				o.PropertiesWithHistory[n] = []valueWithTimestamp{{Value: v, Timestamp: formatTime(view.updatedAt), SourceType: "API"}}
			}
		}
	}
	if len(ro.associations) > 0 {
		for _, name := range ro.associations {
			tk, ok := p.s.kinds.lookup(name)
			if !ok {
				continue
			}
			links := p.links(k.name, id, tk.name)
			if len(links) == 0 {
				continue
			}
			if o.Associations == nil {
				o.Associations = map[string]associatedIDs{}
			}
			coll := associatedIDs{Results: []associatedID{}}
			for _, tid := range slices.Sorted(maps.Keys(links)) {
				for _, t := range slices.Sorted(maps.Keys(links[tid])) {
					coll.Results = append(coll.Results, associatedID{ID: strconv.FormatInt(tid, 10), Type: p.v3TypeName(t)})
				}
			}
			o.Associations[tk.name] = coll
		}
	}
	return o
}

// v3TypeName names an association type the way the v3 objects API does,
// e.g. contact_to_company (primary) and contact_to_company_unlabeled.
func (p *Portal) v3TypeName(typeID int) string {
	t := p.s.atypes.byID[typeID]
	fk, _ := p.s.kinds.lookup(t.from)
	tk, _ := p.s.kinds.lookup(t.to)
	name := strings.ToLower(fk.upper) + "_to_" + strings.ToLower(tk.upper)
	if _, hasPrimary := p.s.atypes.primaries[[2]string{t.from, t.to}]; hasPrimary && !t.primary {
		name += "_unlabeled"
	}
	return name
}

func (p *Portal) wireRecord(k *objectKind, r *record, ro readOpts) objectWire {
	return p.wireObject(k, r.id, snapshot{props: r.props, archived: r.archived, updatedAt: r.updatedAt}, r.createdAt, r.archivedAt, ro)
}

func readOptsFromQuery(r *http.Request) readOpts {
	q := r.URL.Query()
	return readOpts{props: splitList(q["properties"]), withHistory: splitList(q["propertiesWithHistory"]), associations: splitList(q["associations"])}
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, *apiError) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, validationError("%s: %q is not an integer", name, v)
	}
	if n < lo || n > hi {
		return 0, validationError("%s: %d is out of range; it must be between %d and %d", name, n, lo, hi)
	}
	return n, nil
}

func boolParam(r *http.Request, name string) bool {
	v, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return v
}

func (s *Server) objectKind(w http.ResponseWriter, c *call, r *http.Request) (*objectKind, *store, bool) {
	k, st, err := c.p.kind(r.PathValue("objectType"))
	if err != nil {
		writeError(w, newAPIError(http.StatusBadRequest, "VALIDATION_ERROR", err.Error()))
		return nil, nil, false
	}
	return k, st, true
}

// GET /crm/v3/objects/{objectType}
func (s *Server) listObjects(c *call, w http.ResponseWriter, r *http.Request) {
	k, st, ok := s.objectKind(w, c, r)
	if !ok {
		return
	}
	limit, aerr := intParam(r, "limit", 10, 1, 100)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var after int64
	if a := r.URL.Query().Get("after"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			writeError(w, validationError("after: %q is not a valid paging cursor", a))
			return
		}
		after = n
	}
	archived := boolParam(r, "archived")
	ro := readOptsFromQuery(r)
	p := c.p
	p.mu.Lock()
	start, _ := slices.BinarySearch(st.ids, after)
	results := []objectWire{}
	next := ""
	for _, id := range st.ids[start:] {
		rec := st.recs[id]
		if rec.archived != archived {
			continue
		}
		if len(results) == limit {
			next = strconv.FormatInt(id, 10)
			break
		}
		results = append(results, p.wireRecord(k, rec, ro))
	}
	p.mu.Unlock()
	body := struct {
		Results []objectWire `json:"results"`
		Paging  *paging      `json:"paging,omitempty"`
	}{Results: results}
	if next != "" {
		body.Paging = &paging{Next: &pagingNext{After: next, Link: fmt.Sprintf("%s?limit=%d&after=%s", r.URL.Path, limit, next)}}
	}
	writeJSON(w, http.StatusOK, body)
}

// resolveID finds a record by id or by a unique idProperty. Archived records
// are found only when archived is true.
func (p *Portal) resolveID(st *store, raw, idProperty string, archived bool) (*record, bool) {
	if idProperty != "" && idProperty != "hs_object_id" {
		id, ok := st.lookupUnique(idProperty, raw)
		if !ok {
			return nil, false
		}
		return st.live(id)
	}
	id, ok := parseID(raw)
	if !ok {
		return nil, false
	}
	rec, found := st.recs[id]
	if !found || rec.archived != archived {
		return nil, false
	}
	return rec, true
}

// idUse says where an idProperty is used: HubSpot accepts a contact's email
// for reads, single updates and upserts, but not for batch updates.
type idUse int

const (
	idForRead idUse = iota
	idForUpsert
	idForBatchUpdate
)

// checkIDProperty verifies that idProperty identifies records uniquely.
func (p *Portal) checkIDProperty(k *objectKind, idProperty string, use idUse) *apiError {
	if idProperty == "" || idProperty == "hs_object_id" {
		return nil
	}
	unique := false
	for _, d := range p.props[k.name].defs {
		if d.Name == idProperty && d.HasUniqueValue && !d.Archived {
			unique = true
		}
	}
	if unique || (k.name == Contacts && idProperty == "email" && use != idForBatchUpdate) {
		return nil
	}
	if _, ok := p.props[k.name].get(idProperty); !ok {
		return validationError("idProperty: property %q does not exist for %s", idProperty, k.name).withContext("propertyName", idProperty)
	}
	if use == idForRead {
		return validationError("idProperty: %q is not a unique identifier property of %s", idProperty, k.name).withContext("propertyName", idProperty)
	}
	return validationError("Unable to perform update/upsert by non-unique %s property", k.typeID).withContext("propertyName", idProperty)
}

// GET /crm/v3/objects/{objectType}/{objectId}
func (s *Server) getObject(c *call, w http.ResponseWriter, r *http.Request) {
	k, st, ok := s.objectKind(w, c, r)
	if !ok {
		return
	}
	idProp := r.URL.Query().Get("idProperty")
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if aerr := p.checkIDProperty(k, idProp, idForRead); aerr != nil {
		writeError(w, aerr)
		return
	}
	rec, found := p.resolveID(st, r.PathValue("objectId"), idProp, boolParam(r, "archived"))
	if !found {
		writeError(w, notFoundError("resource not found").withContext("id", r.PathValue("objectId")))
		return
	}
	writeJSON(w, http.StatusOK, p.wireRecord(k, rec, readOptsFromQuery(r)))
}

// writeInput is one create/update/upsert input.
type writeInput struct {
	ID                 flexString      `json:"id"`
	IDProperty         string          `json:"idProperty"`
	ObjectWriteTraceID string          `json:"objectWriteTraceId"`
	Properties         propertyValues  `json:"properties"`
	Associations       []createAssocIn `json:"associations"`
}

type createAssocIn struct {
	To    objectID    `json:"to"`
	Types []assocSpec `json:"types"`
}

// plannedAssoc is a validated association of a create input.
type plannedAssoc struct {
	to    *objectKind
	toID  int64
	types []int
}

// checkCreateAssociations validates the associations of a create input.
func (p *Portal) checkCreateAssociations(k *objectKind, in []createAssocIn) ([]plannedAssoc, *apiError) {
	var out []plannedAssoc
	for i, a := range in {
		if len(a.Types) == 0 {
			return nil, validationError("associations[%d].types: at least one association type is required", i)
		}
		var pa plannedAssoc
		for j, t := range a.Types {
			typ, ok := p.s.atypes.byID[t.AssociationTypeID]
			if !ok || typ.from != k.name {
				return nil, validationError("associations[%d].types[%d]: association type id %d is not defined from %s", i, j, t.AssociationTypeID, k.name)
			}
			tk, _ := p.s.kinds.lookup(typ.to)
			if pa.to != nil && pa.to != tk {
				return nil, validationError("associations[%d].types: the types point at different object types (%s and %s)", i, pa.to.name, tk.name)
			}
			pa.to = tk
			pa.types = append(pa.types, typ.id)
		}
		id, ok := parseID(string(a.To.ID))
		if _, live := p.stores[pa.to.name].live(id); !ok || !live {
			return nil, validationError("associations[%d].to.id: %s %s does not exist", i, pa.to.label, a.To.ID).withContext("id", string(a.To.ID))
		}
		pa.toID = id
		out = append(out, pa)
	}
	return out, nil
}

// inputError is the failure of one batch input, in both its whole-request
// form (when multi-status is off) and its 207 form.
type inputError struct {
	whole *apiError
	entry standardError
}

func (p *Portal) issuesInputError(trace, id string, issues []propIssue) *inputError {
	ctx := traceContext(trace, id)
	e := newStandardError("VALIDATION_ERROR", issuesMessage(p.id, issues), ctx, issuesDetails(issues)...)
	return &inputError{whole: issuesError(p.id, issues), entry: e}
}

func traceContext(trace, id string) map[string][]string {
	ctx := map[string][]string{}
	if trace != "" {
		ctx["objectWriteTraceId"] = []string{trace}
	}
	if id != "" {
		ctx["ids"] = []string{id}
	}
	return ctx
}

func notFoundInputError(k *objectKind, trace, id string) *inputError {
	msg := fmt.Sprintf("Could not get some %s objects, they may be deleted or not exist. Check that ids are valid.", k.upper)
	return &inputError{
		whole: notFoundError("%s", msg).withContext("ids", id),
		entry: newStandardError("OBJECT_NOT_FOUND", msg, traceContext(trace, id)),
	}
}

func conflictInputError(k *objectKind, trace, id, prop string, existing int64) *inputError {
	whole := conflictError(k, prop, existing)
	ctx := traceContext(trace, id)
	ctx["existingId"] = []string{strconv.FormatInt(existing, 10)}
	return &inputError{whole: whole, entry: newStandardError("CONFLICT", whole.body.Message, ctx)}
}

func requiredInputError(k *objectKind, trace string, missing []string) *inputError {
	whole := requiredError(k, missing)
	ctx := traceContext(trace, "")
	ctx["properties"] = missing
	return &inputError{whole: whole, entry: newStandardError("VALIDATION_ERROR", whole.body.Message, ctx)}
}

func genericInputError(trace, id string, ae *apiError) *inputError {
	ctx := traceContext(trace, id)
	for k, v := range ae.body.Context {
		ctx[k] = append(ctx[k], v...)
	}
	return &inputError{whole: ae, entry: newStandardError(ae.body.Category, ae.body.Message, ctx, ae.body.Errors...)}
}

// planCreate validates a create input. pending holds unique values claimed
// by earlier inputs of the same batch.
func (p *Portal) planCreate(st *store, in writeInput, pending map[string]map[string]bool) (map[string]string, []plannedAssoc, *inputError) {
	k := st.kind
	vals, issues := p.checkProps(k, in.Properties)
	if len(issues) > 0 {
		return nil, nil, p.issuesInputError(in.ObjectWriteTraceID, "", issues)
	}
	if missing := missingRequired(k, vals); len(missing) > 0 {
		return nil, nil, requiredInputError(k, in.ObjectWriteTraceID, missing)
	}
	if prop, existing, dup := p.conflict(st, vals, 0); dup {
		return nil, nil, conflictInputError(k, in.ObjectWriteTraceID, "", prop, existing)
	}
	if ie := claimUnique(p, k, vals, pending, in.ObjectWriteTraceID); ie != nil {
		return nil, nil, ie
	}
	assocs, aerr := p.checkCreateAssociations(k, in.Associations)
	if aerr != nil {
		return nil, nil, genericInputError(in.ObjectWriteTraceID, "", aerr)
	}
	return vals, assocs, nil
}

// claimUnique rejects a unique value already used by an earlier input of
// the same batch.
func claimUnique(p *Portal, k *objectKind, vals map[string]string, pending map[string]map[string]bool, trace string) *inputError {
	if pending == nil {
		return nil
	}
	for _, u := range p.uniqueProps(k) {
		v := strings.ToLower(vals[u])
		if v == "" {
			continue
		}
		if pending[u][v] {
			ae := validationError("Duplicate value %q for unique property %s in the batch inputs.", vals[u], u).withContext("propertyName", u)
			return genericInputError(trace, "", ae)
		}
		if pending[u] == nil {
			pending[u] = map[string]bool{}
		}
		pending[u][v] = true
	}
	return nil
}

func (p *Portal) applyCreate(st *store, vals map[string]string, assocs []plannedAssoc, now time.Time, src source, ch *changes) *record {
	rec := p.createLocked(st, vals, now, src, ch)
	for _, a := range assocs {
		p.associateLocked(st.kind, rec.id, a.to, a.toID, a.types, now, src, ch)
	}
	p.afterWriteLocked(st.kind, rec, vals, now, src, ch)
	return rec
}

// POST /crm/v3/objects/{objectType}
func (s *Server) createObject(c *call, w http.ResponseWriter, r *http.Request) {
	k, st, ok := s.objectKind(w, c, r)
	if !ok {
		return
	}
	var in writeInput
	if aerr := decodeJSON(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	p := c.p
	ch := &changes{}
	p.mu.Lock()
	vals, assocs, ie := p.planCreate(st, in, nil)
	if ie != nil {
		p.mu.Unlock()
		writeError(w, ie.whole)
		return
	}
	rec := p.applyCreate(st, vals, assocs, s.now(), c.source(), ch)
	out := p.wireRecord(k, rec, readOpts{props: slices.Collect(maps.Keys(rec.props))})
	p.mu.Unlock()
	s.publish(p, ch)
	writeJSON(w, http.StatusCreated, out)
}

// PATCH /crm/v3/objects/{objectType}/{objectId}
func (s *Server) patchObject(c *call, w http.ResponseWriter, r *http.Request) {
	k, st, ok := s.objectKind(w, c, r)
	if !ok {
		return
	}
	var in writeInput
	if aerr := decodeJSON(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	idProp := r.URL.Query().Get("idProperty")
	p := c.p
	ch := &changes{}
	p.mu.Lock()
	if aerr := p.checkIDProperty(k, idProp, idForUpsert); aerr != nil {
		p.mu.Unlock()
		writeError(w, aerr)
		return
	}
	rec, found := p.resolveID(st, r.PathValue("objectId"), idProp, false)
	if !found {
		p.mu.Unlock()
		writeError(w, notFoundError("resource not found").withContext("id", r.PathValue("objectId")))
		return
	}
	vals, ie := p.planUpdate(st, rec, in, nil)
	if ie != nil {
		p.mu.Unlock()
		writeError(w, ie.whole)
		return
	}
	now := s.now()
	p.updateLocked(st, rec, vals, now, c.source(), ch)
	p.afterWriteLocked(k, rec, vals, now, c.source(), ch)
	out := p.wireRecord(k, rec, updatedProps(vals))
	p.mu.Unlock()
	s.publish(p, ch)
	writeJSON(w, http.StatusOK, out)
}

// planUpdate validates an update input. pending holds unique values claimed
// by earlier inputs of the same batch (nil outside batches).
func (p *Portal) planUpdate(st *store, rec *record, in writeInput, pending map[string]map[string]bool) (map[string]string, *inputError) {
	id := strconv.FormatInt(rec.id, 10)
	vals, issues := p.checkProps(st.kind, in.Properties)
	if len(issues) > 0 {
		return nil, p.issuesInputError(in.ObjectWriteTraceID, id, issues)
	}
	if prop, existing, dup := p.conflict(st, vals, rec.id); dup {
		return nil, conflictInputError(st.kind, in.ObjectWriteTraceID, id, prop, existing)
	}
	if ie := claimUnique(p, st.kind, vals, pending, in.ObjectWriteTraceID); ie != nil {
		return nil, ie
	}
	return vals, nil
}

// DELETE /crm/v3/objects/{objectType}/{objectId}
func (s *Server) deleteObject(c *call, w http.ResponseWriter, r *http.Request) {
	_, st, ok := s.objectKind(w, c, r)
	if !ok {
		return
	}
	p := c.p
	ch := &changes{}
	p.mu.Lock()
	if rec, found := p.resolveID(st, r.PathValue("objectId"), "", false); found {
		p.archiveLocked(st, rec, s.now(), c.source(), ch)
	}
	p.mu.Unlock()
	s.publish(p, ch)
	w.WriteHeader(http.StatusNoContent)
}

// POST /crm/v3/objects/{objectType}/batch/read
func (s *Server) batchRead(c *call, w http.ResponseWriter, r *http.Request) {
	k, st, ok := s.objectKind(w, c, r)
	if !ok {
		return
	}
	started := s.now()
	var body struct {
		Inputs                []objectID `json:"inputs"`
		Properties            []string   `json:"properties"`
		PropertiesWithHistory []string   `json:"propertiesWithHistory"`
		IDProperty            string     `json:"idProperty"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := checkBatchSize(len(body.Inputs), batchLimit); aerr != nil {
		writeError(w, aerr)
		return
	}
	if len(body.PropertiesWithHistory) > 0 && len(body.Inputs) > historyBatchLimit {
		writeError(w, validationError("The maximum number of inputs supported in a batch request for property histories is %d. Please reduce the number of items and try again", historyBatchLimit))
		return
	}
	p := c.p
	p.stats.batchInputs(c.pattern, len(body.Inputs))
	archived := boolParam(r, "archived")
	ro := readOpts{props: body.Properties, withHistory: body.PropertiesWithHistory}
	p.mu.Lock()
	if aerr := p.checkIDProperty(k, body.IDProperty, idForRead); aerr != nil {
		p.mu.Unlock()
		writeError(w, aerr)
		return
	}
	results := []objectWire{}
	var missing []string
	seen := map[int64]bool{}
	for _, in := range body.Inputs {
		rec, found := p.resolveID(st, string(in.ID), body.IDProperty, archived)
		if !found {
			missing = append(missing, string(in.ID))
			continue
		}
		if seen[rec.id] {
			continue
		}
		seen[rec.id] = true
		results = append(results, p.wireRecord(k, rec, ro))
	}
	p.mu.Unlock()
	var errs []standardError
	if len(missing) > 0 {
		errs = append(errs, newStandardError("OBJECT_NOT_FOUND",
			fmt.Sprintf("Could not get some %s objects, they may be deleted or not exist. Check that ids are valid.", k.upper),
			map[string][]string{"ids": missing}))
	}
	s.writeBatch(w, http.StatusOK, started, results, errs)
}

type batchWriteBody struct {
	Inputs []writeInput `json:"inputs"`
}

// multiStatus reports whether a batch opted into 207 partial results by
// giving its inputs an objectWriteTraceId.
func multiStatus(inputs []writeInput) bool {
	return slices.ContainsFunc(inputs, func(in writeInput) bool { return in.ObjectWriteTraceID != "" })
}

func (s *Server) decodeBatchWrite(w http.ResponseWriter, c *call, r *http.Request) (*batchWriteBody, bool) {
	var body batchWriteBody
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return nil, false
	}
	if aerr := checkBatchSize(len(body.Inputs), batchLimit); aerr != nil {
		writeError(w, aerr)
		return nil, false
	}
	c.p.stats.batchInputs(c.pattern, len(body.Inputs))
	return &body, true
}

// POST /crm/v3/objects/{objectType}/batch/create
func (s *Server) batchCreate(c *call, w http.ResponseWriter, r *http.Request) {
	k, st, ok := s.objectKind(w, c, r)
	if !ok {
		return
	}
	started := s.now()
	body, ok := s.decodeBatchWrite(w, c, r)
	if !ok {
		return
	}
	multi := multiStatus(body.Inputs)
	p := c.p
	ch := &changes{}
	type plan struct {
		in     writeInput
		vals   map[string]string
		assocs []plannedAssoc
	}
	p.mu.Lock()
	var plans []plan
	var errs []standardError
	pending := map[string]map[string]bool{}
	for _, in := range body.Inputs {
		vals, assocs, ie := p.planCreate(st, in, pending)
		if ie != nil {
			if !multi {
				p.mu.Unlock()
				writeError(w, ie.whole)
				return
			}
			errs = append(errs, ie.entry)
			continue
		}
		plans = append(plans, plan{in: in, vals: vals, assocs: assocs})
	}
	now := s.now()
	results := []objectWire{}
	for _, pl := range plans {
		rec := p.applyCreate(st, pl.vals, pl.assocs, now, c.source(), ch)
		o := p.wireRecord(k, rec, readOpts{props: slices.Collect(maps.Keys(rec.props))})
		o.ObjectWriteTraceID = pl.in.ObjectWriteTraceID
		results = append(results, o)
	}
	p.mu.Unlock()
	s.publish(p, ch)
	s.writeBatch(w, http.StatusCreated, started, results, errs)
}

// duplicateIDs finds ids given more than once.
func duplicateIDs(inputs []writeInput) []string {
	seen := map[string]bool{}
	var dups []string
	for _, in := range inputs {
		id := strings.ToLower(string(in.ID))
		if seen[id] && !slices.Contains(dups, string(in.ID)) {
			dups = append(dups, string(in.ID))
		}
		seen[id] = true
	}
	return dups
}

func duplicateIDsError(dups []string) *apiError {
	return validationError("Duplicate IDs found in batch input: [%s]. IDs must be unique", strings.Join(dups, ", ")).withContext("ids", dups...)
}

// POST /crm/v3/objects/{objectType}/batch/update
func (s *Server) batchUpdate(c *call, w http.ResponseWriter, r *http.Request) {
	k, st, ok := s.objectKind(w, c, r)
	if !ok {
		return
	}
	started := s.now()
	body, ok := s.decodeBatchWrite(w, c, r)
	if !ok {
		return
	}
	if dups := duplicateIDs(body.Inputs); len(dups) > 0 {
		writeError(w, duplicateIDsError(dups))
		return
	}
	multi := multiStatus(body.Inputs)
	p := c.p
	ch := &changes{}
	type plan struct {
		in   writeInput
		rec  *record
		vals map[string]string
	}
	p.mu.Lock()
	var plans []plan
	var errs []standardError
	pending := map[string]map[string]bool{}
	for _, in := range body.Inputs {
		if aerr := p.checkIDProperty(k, in.IDProperty, idForBatchUpdate); aerr != nil {
			p.mu.Unlock()
			writeError(w, aerr)
			return
		}
		rec, found := p.resolveID(st, string(in.ID), in.IDProperty, false)
		if !found {
			// Missing records are always reported per input (207).
			errs = append(errs, notFoundInputError(k, in.ObjectWriteTraceID, string(in.ID)).entry)
			continue
		}
		vals, ie := p.planUpdate(st, rec, in, pending)
		if ie != nil {
			if !multi {
				p.mu.Unlock()
				writeError(w, ie.whole)
				return
			}
			errs = append(errs, ie.entry)
			continue
		}
		plans = append(plans, plan{in: in, rec: rec, vals: vals})
	}
	now := s.now()
	results := []objectWire{}
	for _, pl := range plans {
		p.updateLocked(st, pl.rec, pl.vals, now, c.source(), ch)
		p.afterWriteLocked(k, pl.rec, pl.vals, now, c.source(), ch)
		o := p.wireRecord(k, pl.rec, updatedProps(pl.vals))
		o.ObjectWriteTraceID = pl.in.ObjectWriteTraceID
		results = append(results, o)
	}
	p.mu.Unlock()
	s.publish(p, ch)
	s.writeBatch(w, http.StatusOK, started, results, errs)
}

// POST /crm/v3/objects/{objectType}/batch/upsert
func (s *Server) batchUpsert(c *call, w http.ResponseWriter, r *http.Request) {
	k, st, ok := s.objectKind(w, c, r)
	if !ok {
		return
	}
	started := s.now()
	body, ok := s.decodeBatchWrite(w, c, r)
	if !ok {
		return
	}
	if dups := duplicateIDs(body.Inputs); len(dups) > 0 {
		writeError(w, duplicateIDsError(dups))
		return
	}
	multi := multiStatus(body.Inputs)
	p := c.p
	ch := &changes{}
	type plan struct {
		in     writeInput
		rec    *record // nil: create
		vals   map[string]string
		create map[string]string
	}
	p.mu.Lock()
	var plans []plan
	var errs []standardError
	pending := map[string]map[string]bool{}
	fail := func(ie *inputError) bool {
		if !multi {
			p.mu.Unlock()
			writeError(w, ie.whole)
			return false
		}
		errs = append(errs, ie.entry)
		return true
	}
	for i, in := range body.Inputs {
		if in.IDProperty == "" {
			p.mu.Unlock()
			writeError(w, validationError("inputs[%d].idProperty is required for upserts", i))
			return
		}
		if aerr := p.checkIDProperty(k, in.IDProperty, idForUpsert); aerr != nil {
			p.mu.Unlock()
			writeError(w, aerr)
			return
		}
		if in.ID == "" {
			if !fail(genericInputError(in.ObjectWriteTraceID, "", validationError("inputs[%d].id is required", i))) {
				return
			}
			continue
		}
		rec, found := p.resolveID(st, string(in.ID), in.IDProperty, false)
		if found {
			vals, ie := p.planUpdate(st, rec, in, pending)
			if ie != nil {
				if !fail(ie) {
					return
				}
				continue
			}
			plans = append(plans, plan{in: in, rec: rec, vals: vals})
			continue
		}
		if in.IDProperty == "hs_object_id" {
			if !fail(notFoundInputError(k, in.ObjectWriteTraceID, string(in.ID))) {
				return
			}
			continue
		}
		create := writeInput{Properties: maps.Clone(in.Properties), ObjectWriteTraceID: in.ObjectWriteTraceID}
		if create.Properties == nil {
			create.Properties = propertyValues{}
		}
		create.Properties[in.IDProperty] = string(in.ID)
		vals, _, ie := p.planCreate(st, create, pending)
		if ie != nil {
			if !fail(ie) {
				return
			}
			continue
		}
		plans = append(plans, plan{in: in, create: vals})
	}
	now := s.now()
	results := []objectWire{}
	for _, pl := range plans {
		isNew := pl.rec == nil
		rec := pl.rec
		if isNew {
			rec = p.applyCreate(st, pl.create, nil, now, c.source(), ch)
		} else {
			p.updateLocked(st, rec, pl.vals, now, c.source(), ch)
			p.afterWriteLocked(k, rec, pl.vals, now, c.source(), ch)
		}
		o := p.wireRecord(k, rec, readOpts{props: slices.Collect(maps.Keys(rec.props))})
		o.ObjectWriteTraceID = pl.in.ObjectWriteTraceID
		o.New = &isNew
		results = append(results, o)
	}
	p.mu.Unlock()
	s.publish(p, ch)
	s.writeBatch(w, http.StatusOK, started, results, errs)
}

// POST /crm/v3/objects/{objectType}/batch/archive
func (s *Server) batchArchive(c *call, w http.ResponseWriter, r *http.Request) {
	_, st, ok := s.objectKind(w, c, r)
	if !ok {
		return
	}
	var body struct {
		Inputs []objectID `json:"inputs"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := checkBatchSize(len(body.Inputs), batchLimit); aerr != nil {
		writeError(w, aerr)
		return
	}
	p := c.p
	p.stats.batchInputs(c.pattern, len(body.Inputs))
	ch := &changes{}
	p.mu.Lock()
	now := s.now()
	for _, in := range body.Inputs {
		if rec, found := p.resolveID(st, string(in.ID), "", false); found {
			p.archiveLocked(st, rec, now, c.source(), ch)
		}
	}
	p.mu.Unlock()
	s.publish(p, ch)
	w.WriteHeader(http.StatusNoContent)
}

// POST /crm/v3/objects/{objectType}/merge
func (s *Server) mergeObjects(c *call, w http.ResponseWriter, r *http.Request) {
	k, st, ok := s.objectKind(w, c, r)
	if !ok {
		return
	}
	if k.event == "" {
		writeError(w, validationError("%s cannot be merged", k.name))
		return
	}
	var body struct {
		PrimaryObjectID flexString `json:"primaryObjectId"`
		ObjectIDToMerge flexString `json:"objectIdToMerge"`
	}
	if aerr := decodeJSON(r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	p := c.p
	ch := &changes{}
	p.mu.Lock()
	primary, ok1 := p.resolveID(st, string(body.PrimaryObjectID), "", false)
	merged, ok2 := p.resolveID(st, string(body.ObjectIDToMerge), "", false)
	switch {
	case !ok1:
		p.mu.Unlock()
		writeError(w, notFoundError("primaryObjectId: %s %s does not exist", k.label, body.PrimaryObjectID))
		return
	case !ok2:
		p.mu.Unlock()
		writeError(w, notFoundError("objectIdToMerge: %s %s does not exist", k.label, body.ObjectIDToMerge))
		return
	case primary.id == merged.id:
		p.mu.Unlock()
		writeError(w, validationError("primaryObjectId and objectIdToMerge must differ"))
		return
	}
	now := s.now()
	src := c.source()
	fill := map[string]string{}
	for name, v := range merged.props {
		def, ok := p.props[k.name].get(name)
		if ok && !def.ReadOnlyValue && primary.props[name] == "" && v != "" {
			fill[name] = v
		}
	}
	if k.name == Contacts && merged.props["email"] != "" {
		extra := strings.Trim(primary.props["hs_additional_emails"]+";"+merged.props["email"], ";")
		fill["hs_additional_emails"] = extra
	}
	fill["hs_merged_object_ids"] = strings.Trim(primary.props["hs_merged_object_ids"]+";"+strconv.FormatInt(merged.id, 10), ";")
	moved := len(fill) - 1
	// Move the merged record's associations to the primary one.
	for _, other := range s.kinds.all {
		for _, tid := range slices.Sorted(maps.Keys(p.links(k.name, merged.id, other.name))) {
			if def, ok := s.atypes.defaults[[2]string{k.name, other.name}]; ok {
				p.associateLocked(k, primary.id, other, tid, []int{def}, now, src, nil)
			}
		}
	}
	mergedEmail := merged.props["email"]
	p.archiveLocked(st, merged, now, src, nil)
	if k.name == Contacts && mergedEmail != "" {
		// The merged email stays a way to find the primary contact.
		if st.unique["email"] == nil {
			st.unique["email"] = map[string]int64{}
		}
		st.unique["email"][strings.ToLower(mergedEmail)] = primary.id
	}
	p.updateLocked(st, primary, fill, now, src, nil)
	ch.add(change{kind: "merge", object: k, objectID: primary.id, at: now, src: src, mergedIDs: []int64{merged.id}, propsMoved: moved})
	out := p.wireRecord(k, primary, readOpts{props: slices.Collect(maps.Keys(primary.props))})
	p.mu.Unlock()
	s.publish(p, ch)
	writeJSON(w, http.StatusOK, out)
}
