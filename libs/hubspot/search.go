package hubspot

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"strconv"

	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
)

// Search limits enforced client-side (hubspot-api.md §3).
const (
	MaxSearchLimit        = 200    // results per page
	MaxSearchResults      = 10_000 // results reachable by paging one query
	MaxFilterGroups       = 5
	MaxFiltersPerGroup    = 6
	MaxFilters            = 18
	MaxSearchQueryLength  = 3000
	MaxSearchSorts        = 1
	defaultSearchPageSize = 100
)

// Search operators.
const (
	OpEQ               = "EQ"
	OpNEQ              = "NEQ"
	OpLT               = "LT"
	OpLTE              = "LTE"
	OpGT               = "GT"
	OpGTE              = "GTE"
	OpBetween          = "BETWEEN"
	OpIn               = "IN"
	OpNotIn            = "NOT_IN"
	OpHasProperty      = "HAS_PROPERTY"
	OpNotHasProperty   = "NOT_HAS_PROPERTY"
	OpContainsToken    = "CONTAINS_TOKEN"
	OpNotContainsToken = "NOT_CONTAINS_TOKEN"
)

// Sort directions.
const (
	Ascending  = "ASCENDING"
	Descending = "DESCENDING"
)

// SearchRequest is PublicObjectSearchRequest. Filters within a group AND,
// groups OR.
type SearchRequest struct {
	FilterGroups []FilterGroup `json:"filterGroups"`
	Sorts        []Sort        `json:"sorts"`
	Query        string        `json:"query,omitempty"`
	Properties   []string      `json:"properties"`
	// Limit is the page size, 1..200 (default 100).
	Limit int `json:"limit"`
	// After is the offset cursor of the next page (paging.next.after).
	After string `json:"after,omitempty"`
}

// FilterGroup is a conjunction of filters.
type FilterGroup struct {
	Filters []Filter `json:"filters"`
}

// Filter is one property condition. Value is used by the comparison
// operators, Values by IN / NOT_IN, HighValue by BETWEEN.
type Filter struct {
	PropertyName string   `json:"propertyName"`
	Operator     string   `json:"operator"`
	Value        string   `json:"value,omitempty"`
	HighValue    string   `json:"highValue,omitempty"`
	Values       []string `json:"values,omitempty"`
}

// Sort orders results by one property.
type Sort struct {
	PropertyName string `json:"propertyName"`
	Direction    string `json:"direction"`
}

// SearchPage is one page of search results.
type SearchPage struct {
	// Total is the number of matches (it may exceed what paging can reach).
	Total   int      `json:"total"`
	Results []Object `json:"results"`
	Paging  *Paging  `json:"paging,omitempty"`
}

var operators = map[string]bool{
	OpEQ: true, OpNEQ: true, OpLT: true, OpLTE: true, OpGT: true, OpGTE: true, OpBetween: true,
	OpIn: true, OpNotIn: true, OpHasProperty: true, OpNotHasProperty: true,
	OpContainsToken: true, OpNotContainsToken: true,
}

// Validate checks the request against HubSpot's search limits and says
// which part is wrong.
func (r SearchRequest) Validate() error {
	if r.Limit < 0 || r.Limit > MaxSearchLimit {
		return fmt.Errorf("search: limit %d out of range 1..%d", r.Limit, MaxSearchLimit)
	}
	if len(r.Query) > MaxSearchQueryLength {
		return fmt.Errorf("search: query is %d characters, at most %d", len(r.Query), MaxSearchQueryLength)
	}
	if len(r.FilterGroups) > MaxFilterGroups {
		return fmt.Errorf("search: %d filterGroups, at most %d", len(r.FilterGroups), MaxFilterGroups)
	}
	if len(r.Sorts) > MaxSearchSorts {
		return fmt.Errorf("search: %d sorts, at most %d", len(r.Sorts), MaxSearchSorts)
	}
	for i, s := range r.Sorts {
		if s.PropertyName == "" {
			return fmt.Errorf("search: sorts[%d]: empty propertyName", i)
		}
		if s.Direction != Ascending && s.Direction != Descending {
			return fmt.Errorf("search: sorts[%d]: direction %q, want ASCENDING or DESCENDING", i, s.Direction)
		}
	}
	if r.After != "" {
		if off, err := strconv.Atoi(r.After); err == nil && off >= MaxSearchResults {
			return fmt.Errorf("search: after %d is past the %d-result cap of one query", off, MaxSearchResults)
		}
	}
	total := 0
	for g, group := range r.FilterGroups {
		if len(group.Filters) == 0 {
			return fmt.Errorf("search: filterGroups[%d]: no filters", g)
		}
		if len(group.Filters) > MaxFiltersPerGroup {
			return fmt.Errorf("search: filterGroups[%d]: %d filters, at most %d", g, len(group.Filters), MaxFiltersPerGroup)
		}
		total += len(group.Filters)
		for f, flt := range group.Filters {
			where := fmt.Sprintf("search: filterGroups[%d].filters[%d]", g, f)
			if flt.PropertyName == "" {
				return fmt.Errorf("%s: empty propertyName", where)
			}
			if !operators[flt.Operator] {
				return fmt.Errorf("%s (%s): unknown operator %q", where, flt.PropertyName, flt.Operator)
			}
			switch flt.Operator {
			case OpIn, OpNotIn:
				if len(flt.Values) == 0 {
					return fmt.Errorf("%s (%s %s): needs values", where, flt.PropertyName, flt.Operator)
				}
			case OpBetween:
				if flt.Value == "" || flt.HighValue == "" {
					return fmt.Errorf("%s (%s BETWEEN): needs value and highValue", where, flt.PropertyName)
				}
			}
		}
	}
	if total > MaxFilters {
		return fmt.Errorf("search: %d filters in total, at most %d", total, MaxFilters)
	}
	return nil
}

// Search runs one page of a CRM search. It spends the portal's search budget
// (5 requests/s), not the burst budget; results are eventually consistent.
func (c *Client) Search(ctx context.Context, t ObjectType, req SearchRequest) (*SearchPage, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if req.Limit == 0 {
		req.Limit = defaultSearchPageSize
	}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("hubspot: %s %w", t, err)
	}
	if req.FilterGroups == nil {
		req.FilterGroups = []FilterGroup{}
	}
	if req.Sorts == nil {
		req.Sorts = []Sort{}
	}
	if req.Properties == nil {
		req.Properties = []string{}
	}
	var out SearchPage
	if _, err := c.do(ctx, call{op: "objects.search", method: http.MethodPost, path: c.objectsPath(t, "search"),
		in: req, out: &out, kind: quota.Search}); err != nil {
		return nil, err
	}
	return &out, nil
}

// SearchAll iterates over every result of a search by following the offset
// cursor. One query reaches at most MaxSearchResults results; past that the
// iterator yields an error. For change feeds use Changes, which has no cap
// and tolerates concurrent writes.
func (c *Client) SearchAll(ctx context.Context, t ObjectType, req SearchRequest) iter.Seq2[Object, error] {
	return func(yield func(Object, error) bool) {
		for {
			page, err := c.Search(ctx, t, req)
			if err != nil {
				yield(Object{}, err)
				return
			}
			for _, o := range page.Results {
				if !yield(o, nil) {
					return
				}
			}
			if req.After = page.Paging.NextAfter(); req.After == "" {
				return
			}
		}
	}
}
