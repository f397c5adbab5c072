package hubspottest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// list is a v3 (ILS) list.
type list struct {
	id             int64
	name           string
	objectTypeID   string
	processingType string
	filterBranch   json.RawMessage
	version        int
	createdAt      time.Time
	updatedAt      time.Time
	members        map[int64]time.Time // record id -> membership timestamp
}

type listWire struct {
	ListID           string          `json:"listId"`
	ListVersion      int             `json:"listVersion"`
	Name             string          `json:"name"`
	ObjectTypeID     string          `json:"objectTypeId"`
	ProcessingStatus string          `json:"processingStatus"`
	ProcessingType   string          `json:"processingType"`
	Size             int             `json:"size"`
	CreatedAt        string          `json:"createdAt"`
	UpdatedAt        string          `json:"updatedAt"`
	FiltersUpdatedAt string          `json:"filtersUpdatedAt,omitempty"`
	FilterBranch     json.RawMessage `json:"filterBranch,omitempty"`
}

func (l *list) wire(includeFilters bool) listWire {
	o := listWire{
		ListID: strconv.FormatInt(l.id, 10), ListVersion: l.version, Name: l.name, ObjectTypeID: l.objectTypeID,
		ProcessingStatus: "COMPLETE", ProcessingType: l.processingType, Size: len(l.members),
		CreatedAt: formatTime(l.createdAt), UpdatedAt: formatTime(l.updatedAt),
	}
	if includeFilters && len(l.filterBranch) > 0 {
		o.FilterBranch = l.filterBranch
		o.FiltersUpdatedAt = o.CreatedAt
	}
	return o
}

func writeList(w http.ResponseWriter, status int, l *list, includeFilters bool) {
	writeJSON(w, status, struct {
		List listWire `json:"list"`
	}{l.wire(includeFilters)})
}

// POST /crm/v3/lists
func (s *Server) createList(c *call, w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name           string          `json:"name"`
		ObjectTypeID   string          `json:"objectTypeId"`
		ProcessingType string          `json:"processingType"`
		FilterBranch   json.RawMessage `json:"filterBranch"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	k, ok := s.kinds.lookup(in.ObjectTypeID)
	switch {
	case strings.TrimSpace(in.Name) == "":
		writeError(w, validationError("name is required"))
		return
	case !ok || (k.name != Contacts && k.name != Companies && k.name != Deals):
		writeError(w, validationError("objectTypeId %q is not supported for lists (use 0-1, 0-2 or 0-3)", in.ObjectTypeID))
		return
	}
	pt := strings.ToUpper(in.ProcessingType)
	switch pt {
	case "MANUAL", "SNAPSHOT", "DYNAMIC":
	default:
		writeError(w, validationError("processingType %q is invalid (want MANUAL, DYNAMIC or SNAPSHOT)", in.ProcessingType))
		return
	}
	if pt == "DYNAMIC" && len(in.FilterBranch) == 0 {
		writeError(w, validationError("filterBranch is required for DYNAMIC lists"))
		return
	}
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lists {
		if strings.EqualFold(l.name, in.Name) {
			writeError(w, validationError("A list named '%s' already exists (listId %d).", in.Name, l.id).withContext("listName", in.Name))
			return
		}
	}
	now := s.now()
	p.nextLID++
	l := &list{id: p.nextLID, name: in.Name, objectTypeID: k.typeID, processingType: pt, filterBranch: in.FilterBranch, version: 1, createdAt: now, updatedAt: now, members: map[int64]time.Time{}}
	p.lists[l.id] = l
	writeList(w, http.StatusOK, l, true)
}

func (p *Portal) listByID(raw string) (*list, *apiError) {
	id, ok := parseID(raw)
	l, found := p.lists[id]
	if !ok || !found {
		return nil, notFoundError("List %s does not exist.", raw).withContext("listId", raw)
	}
	return l, nil
}

// GET /crm/v3/lists/{listId}
func (s *Server) getList(c *call, w http.ResponseWriter, r *http.Request) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	l, aerr := c.p.listByID(r.PathValue("listId"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeList(w, http.StatusOK, l, boolParam(r, "includeFilters"))
}

// GET /crm/v3/lists?listIds=...
func (s *Server) getLists(c *call, w http.ResponseWriter, r *http.Request) {
	ids := splitList(r.URL.Query()["listIds"])
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	out := []listWire{}
	for _, id := range slices.Sorted(maps.Keys(c.p.lists)) {
		if len(ids) == 0 || slices.Contains(ids, strconv.FormatInt(id, 10)) {
			out = append(out, c.p.lists[id].wire(boolParam(r, "includeFilters")))
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Lists []listWire `json:"lists"`
	}{out})
}

// GET /crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}
func (s *Server) getListByName(c *call, w http.ResponseWriter, r *http.Request) {
	k, ok := s.kinds.lookup(r.PathValue("objectTypeId"))
	name := r.PathValue("listName")
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if ok {
		for _, l := range c.p.lists {
			if l.objectTypeID == k.typeID && strings.EqualFold(l.name, name) {
				writeList(w, http.StatusOK, l, boolParam(r, "includeFilters"))
				return
			}
		}
	}
	writeError(w, notFoundError("List does not exist with name %s and object type %s.", name, r.PathValue("objectTypeId")))
}

// DELETE /crm/v3/lists/{listId}
func (s *Server) deleteList(c *call, w http.ResponseWriter, r *http.Request) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	l, aerr := c.p.listByID(r.PathValue("listId"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	delete(c.p.lists, l.id)
	w.WriteHeader(http.StatusNoContent)
}

type membershipsUpdate struct {
	RecordsIDsAdded  []string `json:"recordsIdsAdded"` // sic: HubSpot's spelling
	RecordIDsRemoved []string `json:"recordIdsRemoved"`
	RecordIDsMissing []string `json:"recordIdsMissing"`
}

// changeMembers adds and removes records of a MANUAL or SNAPSHOT list.
func (p *Portal) changeMembers(l *list, add, remove []string, now time.Time) (membershipsUpdate, *apiError) {
	out := membershipsUpdate{RecordsIDsAdded: []string{}, RecordIDsRemoved: []string{}, RecordIDsMissing: []string{}}
	if l.processingType != "MANUAL" && l.processingType != "SNAPSHOT" {
		return out, validationError("List %d has processingType %s; memberships can only be changed on MANUAL or SNAPSHOT lists.", l.id, l.processingType).withContext("listId", strconv.FormatInt(l.id, 10))
	}
	k, _ := p.s.kinds.lookup(l.objectTypeID)
	st := p.stores[k.name]
	for _, raw := range add {
		id, ok := parseID(raw)
		if _, live := st.live(id); !ok || !live {
			out.RecordIDsMissing = append(out.RecordIDsMissing, raw)
			continue
		}
		if _, member := l.members[id]; member {
			continue
		}
		l.members[id] = now
		out.RecordsIDsAdded = append(out.RecordsIDsAdded, raw)
	}
	for _, raw := range remove {
		id, ok := parseID(raw)
		if _, member := l.members[id]; !ok || !member {
			out.RecordIDsMissing = append(out.RecordIDsMissing, raw)
			continue
		}
		delete(l.members, id)
		out.RecordIDsRemoved = append(out.RecordIDsRemoved, raw)
	}
	if len(out.RecordsIDsAdded)+len(out.RecordIDsRemoved) > 0 {
		l.updatedAt = now
	}
	return out, nil
}

func (s *Server) membershipChange(c *call, w http.ResponseWriter, r *http.Request, add, remove []string) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	l, aerr := c.p.listByID(r.PathValue("listId"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	out, aerr := c.p.changeMembers(l, add, remove, s.now())
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func decodeIDs(r *http.Request) ([]string, *apiError) {
	var ids []flexString
	if aerr := decodeJSON(r, &ids); aerr != nil {
		return nil, aerr
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out, nil
}

// PUT /crm/v3/lists/{listId}/memberships/add
func (s *Server) addMembers(c *call, w http.ResponseWriter, r *http.Request) {
	ids, aerr := decodeIDs(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	c.p.stats.batchInputs(c.pattern, len(ids))
	s.membershipChange(c, w, r, ids, nil)
}

// PUT /crm/v3/lists/{listId}/memberships/remove
func (s *Server) removeMembers(c *call, w http.ResponseWriter, r *http.Request) {
	ids, aerr := decodeIDs(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	c.p.stats.batchInputs(c.pattern, len(ids))
	s.membershipChange(c, w, r, nil, ids)
}

// PUT /crm/v3/lists/{listId}/memberships/add-and-remove
func (s *Server) addAndRemoveMembers(c *call, w http.ResponseWriter, r *http.Request) {
	var in struct {
		RecordIDsToAdd    []flexString `json:"recordIdsToAdd"`
		RecordIDsToRemove []flexString `json:"recordIdsToRemove"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	conv := func(in []flexString) []string {
		out := make([]string, len(in))
		for i, v := range in {
			out[i] = string(v)
		}
		return out
	}
	c.p.stats.batchInputs(c.pattern, len(in.RecordIDsToAdd)+len(in.RecordIDsToRemove))
	s.membershipChange(c, w, r, conv(in.RecordIDsToAdd), conv(in.RecordIDsToRemove))
}

// DELETE /crm/v3/lists/{listId}/memberships
func (s *Server) clearMembers(c *call, w http.ResponseWriter, r *http.Request) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	l, aerr := c.p.listByID(r.PathValue("listId"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if l.processingType != "MANUAL" && l.processingType != "SNAPSHOT" {
		writeError(w, validationError("List %d has processingType %s; memberships can only be changed on MANUAL or SNAPSHOT lists.", l.id, l.processingType))
		return
	}
	l.members = map[int64]time.Time{}
	l.updatedAt = s.now()
	w.WriteHeader(http.StatusNoContent)
}

// GET /crm/v3/lists/{listId}/memberships and .../memberships/join-order
func (s *Server) getMembers(c *call, w http.ResponseWriter, r *http.Request) {
	limit, aerr := intParam(r, "limit", 100, 1, 250)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	offset := 0
	if a := r.URL.Query().Get("after"); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil || n < 0 {
			writeError(w, validationError("after: %q is not a valid paging cursor", a))
			return
		}
		offset = n
	}
	joinOrder := strings.HasSuffix(r.URL.Path, "/join-order")
	c.p.mu.Lock()
	l, aerr := c.p.listByID(r.PathValue("listId"))
	if aerr != nil {
		c.p.mu.Unlock()
		writeError(w, aerr)
		return
	}
	ids := slices.Sorted(maps.Keys(l.members))
	if joinOrder {
		slices.SortStableFunc(ids, func(a, b int64) int { return l.members[a].Compare(l.members[b]) })
	}
	type member struct {
		RecordID            string `json:"recordId"`
		MembershipTimestamp string `json:"membershipTimestamp"`
	}
	results := []member{}
	for i := offset; i < len(ids) && len(results) < limit; i++ {
		results = append(results, member{RecordID: strconv.FormatInt(ids[i], 10), MembershipTimestamp: formatTime(l.members[ids[i]])})
	}
	total := len(ids)
	c.p.mu.Unlock()
	next := ""
	if offset+len(results) < total {
		next = fmt.Sprint(offset + len(results))
	}
	writeJSON(w, http.StatusOK, struct {
		Results []member `json:"results"`
		Total   int      `json:"total"`
		Paging  *paging  `json:"paging,omitempty"`
	}{results, total, pagingAfter(next)})
}
