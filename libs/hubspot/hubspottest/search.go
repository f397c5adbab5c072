package hubspottest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Search limits (design/hubspot-api.md §3).
const (
	maxFilterGroups     = 5
	maxFiltersPerGroup  = 6
	maxFiltersTotal     = 18
	maxSearchLimit      = 200
	maxSearchResults    = 10_000
	maxSearchQueryChars = 3000
)

type filterIn struct {
	PropertyName string       `json:"propertyName"`
	Operator     string       `json:"operator"`
	Value        *flexString  `json:"value"`
	Values       []flexString `json:"values"`
	HighValue    *flexString  `json:"highValue"`
}

type sortIn struct {
	PropertyName string
	Descending   bool
}

// UnmarshalJSON accepts the spec's string form ("createdate",
// "-createdate") and the object form documented in HubSpot's guides
// ({"propertyName":"createdate","direction":"DESCENDING"}).
func (s *sortIn) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		s.PropertyName, s.Descending = strings.TrimPrefix(v, "-"), strings.HasPrefix(v, "-")
		return nil
	}
	var o struct {
		PropertyName string `json:"propertyName"`
		Direction    string `json:"direction"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	switch strings.ToUpper(o.Direction) {
	case "", "ASCENDING", "ASC":
	case "DESCENDING", "DESC":
		s.Descending = true
	default:
		return fmt.Errorf("sort direction %q is not ASCENDING or DESCENDING", o.Direction)
	}
	s.PropertyName = o.PropertyName
	return nil
}

type searchRequest struct {
	FilterGroups []struct {
		Filters []filterIn `json:"filters"`
	} `json:"filterGroups"`
	Sorts      []sortIn   `json:"sorts"`
	Properties []string   `json:"properties"`
	Limit      *int       `json:"limit"`
	After      flexString `json:"after"`
	Query      string     `json:"query"`
}

// filter is a validated filter.
type filter struct {
	def    *propertyDef
	op     string
	value  string
	values []string
	high   string
}

// validateSearch checks a search request against HubSpot's limits.
func (p *Portal) validateSearch(k *objectKind, req *searchRequest) ([][]filter, int, int, *apiError) {
	if n := len(req.FilterGroups); n > maxFilterGroups {
		return nil, 0, 0, validationError("Too many filter groups: %d were provided, but a search request allows at most %d filterGroups.", n, maxFilterGroups).withContext("filterGroups", strconv.Itoa(n))
	}
	total := 0
	groups := make([][]filter, 0, len(req.FilterGroups))
	for gi, g := range req.FilterGroups {
		if n := len(g.Filters); n > maxFiltersPerGroup {
			return nil, 0, 0, validationError("Too many filters in filterGroups[%d]: %d were provided, but a filter group allows at most %d filters.", gi, n, maxFiltersPerGroup)
		}
		total += len(g.Filters)
		var fs []filter
		for fi, f := range g.Filters {
			where := fmt.Sprintf("filterGroups[%d].filters[%d]", gi, fi)
			def, ok := p.props[k.name].get(f.PropertyName)
			if !ok {
				return nil, 0, 0, validationError("%s: property %q does not exist for %s", where, f.PropertyName, k.name).withContext("propertyName", f.PropertyName)
			}
			flt := filter{def: def, op: strings.ToUpper(f.Operator)}
			if f.Value != nil {
				flt.value = string(*f.Value)
			}
			if f.HighValue != nil {
				flt.high = string(*f.HighValue)
			}
			for _, v := range f.Values {
				flt.values = append(flt.values, string(v))
			}
			switch flt.op {
			case "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN":
				if f.Value == nil {
					return nil, 0, 0, validationError("%s: operator %s needs a value", where, flt.op)
				}
			case "BETWEEN":
				if f.Value == nil || f.HighValue == nil {
					return nil, 0, 0, validationError("%s: operator BETWEEN needs value and highValue", where)
				}
			case "IN", "NOT_IN":
				if len(f.Values) == 0 {
					return nil, 0, 0, validationError("%s: operator %s needs values", where, flt.op)
				}
			case "HAS_PROPERTY", "NOT_HAS_PROPERTY":
			default:
				return nil, 0, 0, validationError("%s: unknown operator %q", where, f.Operator)
			}
			fs = append(fs, flt)
		}
		groups = append(groups, fs)
	}
	if total > maxFiltersTotal {
		return nil, 0, 0, validationError("Too many filters: %d were provided, but a search request allows at most %d filters in total.", total, maxFiltersTotal)
	}
	limit := 10
	if req.Limit != nil {
		limit = *req.Limit
	}
	if limit < 0 || limit > maxSearchLimit {
		return nil, 0, 0, validationError("limit: %d is out of range; a search returns at most %d results per page.", limit, maxSearchLimit)
	}
	offset := 0
	if req.After != "" {
		n, err := strconv.Atoi(string(req.After))
		if err != nil || n < 0 {
			return nil, 0, 0, validationError("after: %q is not a valid paging cursor", req.After)
		}
		offset = n
	}
	if offset >= maxSearchResults {
		return nil, 0, 0, validationError("Search results are limited to %d per query; paging past result %d (after=%d) is not allowed. Narrow the query with filters instead.", maxSearchResults, maxSearchResults, offset).withContext("after", strconv.Itoa(offset))
	}
	if len(req.Query) > maxSearchQueryChars {
		return nil, 0, 0, validationError("query: %d characters; the maximum is %d", len(req.Query), maxSearchQueryChars)
	}
	for i, s := range req.Sorts {
		if _, ok := p.props[k.name].get(s.PropertyName); !ok {
			return nil, 0, 0, validationError("sorts[%d]: property %q does not exist for %s", i, s.PropertyName, k.name).withContext("propertyName", s.PropertyName)
		}
	}
	// Unknown names in properties are ignored in the response, as HubSpot does.
	return groups, limit, offset, nil
}

// compareValues orders two stored values of a property; ok is false when
// they cannot be compared as the property's type.
func compareValues(def *propertyDef, a, b string) (int, bool) {
	switch def.Type {
	case "number":
		x, err1 := strconv.ParseFloat(a, 64)
		y, err2 := strconv.ParseFloat(b, 64)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		return cmp.Compare(x, y), true
	case "datetime", "date":
		x, ok1 := parseDateTime(a)
		y, ok2 := parseDateTime(b)
		if !ok1 || !ok2 {
			return 0, false
		}
		return x.Compare(y), true
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b)), true
}

func tokens(v string) []string {
	return strings.FieldsFunc(strings.ToLower(v), func(r rune) bool {
		return r == ' ' || r == ';' || r == ',' || r == '\t' || r == '\n'
	})
}

func containsToken(stored, want string) bool {
	want = strings.ToLower(want)
	match := func(s string) bool {
		if strings.Contains(want, "*") {
			return wildcardMatch(want, s)
		}
		return s == want
	}
	if match(strings.ToLower(stored)) {
		return true
	}
	return slices.ContainsFunc(tokens(stored), match)
}

// wildcardMatch matches s against a pattern in which * stands for any run
// of characters.
func wildcardMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, part := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, part)
		}
		idx := strings.Index(s, part)
		if idx < 0 {
			return false
		}
		s = s[idx+len(part):]
	}
	return true
}

func (f filter) matches(props map[string]string) bool {
	v, has := props[f.def.Name]
	has = has && v != ""
	eq := func(want string) bool {
		c, ok := compareValues(f.def, v, want)
		return ok && c == 0
	}
	order := func(want string) (int, bool) { return compareValues(f.def, v, want) }
	switch f.op {
	case "HAS_PROPERTY":
		return has
	case "NOT_HAS_PROPERTY":
		return !has
	case "NEQ":
		return !has || !eq(f.value)
	case "NOT_IN":
		return !has || !f.in(v)
	case "NOT_CONTAINS_TOKEN":
		return !has || !containsToken(v, f.value)
	}
	if !has {
		return false
	}
	switch f.op {
	case "EQ":
		return eq(f.value)
	case "IN":
		return f.in(v)
	case "CONTAINS_TOKEN":
		return containsToken(v, f.value)
	case "LT", "LTE", "GT", "GTE":
		c, ok := order(f.value)
		if !ok {
			return false
		}
		return (f.op == "LT" && c < 0) || (f.op == "LTE" && c <= 0) || (f.op == "GT" && c > 0) || (f.op == "GTE" && c >= 0)
	case "BETWEEN":
		lo, ok1 := order(f.value)
		hi, ok2 := order(f.high)
		return ok1 && ok2 && lo >= 0 && hi <= 0
	}
	return false
}

// in implements IN. For string properties HubSpot matches IN values against
// the lower-cased stored value, so values must be given in lower case.
func (f filter) in(v string) bool {
	for _, want := range f.values {
		if f.def.Type == "string" {
			if strings.ToLower(v) == want {
				return true
			}
			continue
		}
		if c, ok := compareValues(f.def, v, want); ok && c == 0 {
			return true
		}
	}
	return false
}

func queryMatches(k *objectKind, props map[string]string, q string) bool {
	terms := strings.Fields(strings.ToLower(q))
	if len(terms) == 0 {
		return true
	}
	var words []string
	for _, name := range k.queryProps {
		words = append(words, strings.FieldsFunc(strings.ToLower(props[name]), func(r rune) bool {
			return r == ' ' || r == ';' || r == ',' || r == '@' || r == '.' || r == '-'
		})...)
		words = append(words, strings.ToLower(props[name]))
	}
	for _, t := range terms {
		if !slices.ContainsFunc(words, func(w string) bool { return w != "" && strings.HasPrefix(w, t) }) {
			return false
		}
	}
	return true
}

type searchHit struct {
	rec  *record
	view snapshot
}

// POST /crm/v3/objects/{objectType}/search
func (s *Server) searchObjects(c *call, w http.ResponseWriter, r *http.Request) {
	k, st, ok := s.objectKind(w, c, r)
	if !ok {
		return
	}
	var req searchRequest
	if aerr := decodeJSON(r, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	p := c.p
	p.mu.Lock()
	groups, limit, offset, aerr := p.validateSearch(k, &req)
	if aerr != nil {
		p.mu.Unlock()
		writeError(w, aerr)
		return
	}
	now := s.now()
	var hits []searchHit
	for _, id := range st.ids {
		rec := st.recs[id]
		view, visible := p.indexedView(rec, now)
		if !visible || view.archived {
			continue
		}
		if !matchesGroups(groups, view.props) || !queryMatches(k, view.props, req.Query) {
			continue
		}
		hits = append(hits, searchHit{rec: rec, view: view})
	}
	if len(req.Sorts) > 0 {
		// HubSpot honours a single sort; ties fall back to the record id.
		srt := req.Sorts[0]
		def, _ := p.props[k.name].get(srt.PropertyName)
		slices.SortStableFunc(hits, func(a, b searchHit) int {
			av, bv := a.view.props[srt.PropertyName], b.view.props[srt.PropertyName]
			switch {
			case av == "" && bv == "":
				return cmp.Compare(a.rec.id, b.rec.id)
			case av == "":
				return 1
			case bv == "":
				return -1
			}
			c, ok := compareValues(def, av, bv)
			if !ok || c == 0 {
				return cmp.Compare(a.rec.id, b.rec.id)
			}
			if srt.Descending {
				return -c
			}
			return c
		})
	}
	total := len(hits)
	end := min(offset+limit, total, maxSearchResults)
	results := []objectWire{}
	if offset < end {
		for _, h := range hits[offset:end] {
			results = append(results, p.wireObject(k, h.rec.id, h.view, h.rec.createdAt, time.Time{}, readOpts{props: req.Properties}))
		}
	}
	p.mu.Unlock()
	body := struct {
		Total   int          `json:"total"`
		Results []objectWire `json:"results"`
		Paging  *paging      `json:"paging,omitempty"`
	}{Total: total, Results: results}
	if next := offset + len(results); len(results) > 0 && next < total {
		// HubSpot hands out the cursor even when it points at the 10,000
		// cap; following it then fails with 400.
		body.Paging = &paging{Next: &pagingNext{After: strconv.Itoa(next)}}
	}
	writeJSON(w, http.StatusOK, body)
}

func matchesGroups(groups [][]filter, props map[string]string) bool {
	if len(groups) == 0 {
		return true
	}
	for _, g := range groups {
		all := true
		for _, f := range g {
			if !f.matches(props) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}
