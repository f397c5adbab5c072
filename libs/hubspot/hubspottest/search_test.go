package hubspottest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

type searchPage struct {
	Total   int          `json:"total"`
	Results []objectWire `json:"results"`
	Paging  *paging      `json:"paging"`
}

func filterGroups(groups, filtersPerGroup int) []map[string]any {
	out := make([]map[string]any, groups)
	for g := range out {
		fs := make([]map[string]any, filtersPerGroup)
		for f := range fs {
			fs[f] = map[string]any{"propertyName": "name", "operator": "HAS_PROPERTY"}
		}
		out[g] = map[string]any{"filters": fs}
	}
	return out
}

func TestSearchLimits(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{DisableRateLimits: true})
	a := newAPI(t, s, s.AddPortal(PortalOptions{}))
	cases := []struct {
		name    string
		body    map[string]any
		status  int
		message string
	}{
		{"5 groups of 3 is fine", map[string]any{"filterGroups": filterGroups(5, 3)}, 200, ""},
		{"3 groups of 6 is fine", map[string]any{"filterGroups": filterGroups(3, 6)}, 200, ""},
		{"6 groups", map[string]any{"filterGroups": filterGroups(6, 1)}, 400, "Too many filter groups"},
		{"7 filters in a group", map[string]any{"filterGroups": filterGroups(1, 7)}, 400, "Too many filters in filterGroups[0]"},
		{"19 filters in total", map[string]any{"filterGroups": append(filterGroups(3, 6), filterGroups(1, 1)...)}, 400, "Too many filters: 19"},
		{"limit 200 is fine", map[string]any{"limit": 200}, 200, ""},
		{"limit 201", map[string]any{"limit": 201}, 400, "limit: 201"},
		{"unknown filter property", map[string]any{"filterGroups": []map[string]any{{"filters": []map[string]any{{"propertyName": "nope", "operator": "EQ", "value": "x"}}}}}, 400, `property "nope" does not exist`},
		{"unknown operator", map[string]any{"filterGroups": []map[string]any{{"filters": []map[string]any{{"propertyName": "name", "operator": "LIKE", "value": "x"}}}}}, 400, "unknown operator"},
		{"IN without values", map[string]any{"filterGroups": []map[string]any{{"filters": []map[string]any{{"propertyName": "name", "operator": "IN"}}}}}, 400, "needs values"},
		{"after 10000", map[string]any{"after": "10000"}, 400, "limited to 10000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := a.do("POST", "/crm/v3/objects/companies/search", tc.body).expect(t, tc.status)
			if tc.status == 400 {
				e := r.errorBody(t)
				if e.Category != "VALIDATION_ERROR" || !strings.Contains(e.Message, tc.message) {
					t.Fatalf("error = %+v, want message containing %q", e, tc.message)
				}
			}
		})
	}
}

func TestSearchTenThousandCap(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{DisableRateLimits: true})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	recs := make([]map[string]string, 10_050)
	for i := range recs {
		recs[i] = props("name", fmt.Sprint("c", i))
	}
	p.SeedCompanies(recs...)

	var page searchPage
	a.do("POST", "/crm/v3/objects/companies/search", map[string]any{"limit": 200, "after": "9900"}).expect(t, 200).decode(t, &page)
	if page.Total != 10_050 || len(page.Results) != 100 || page.Paging == nil || page.Paging.Next.After != "10000" {
		t.Fatalf("page at 9900: total %d, %d results, paging %+v", page.Total, len(page.Results), page.Paging)
	}
	// The cursor HubSpot hands out at the cap cannot be followed.
	e := a.do("POST", "/crm/v3/objects/companies/search", map[string]any{"limit": 200, "after": page.Paging.Next.After}).expect(t, 400).errorBody(t)
	if e.Category != "VALIDATION_ERROR" {
		t.Fatalf("error = %+v", e)
	}
}

func TestSearchOperatorsAndSorts(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{DisableRateLimits: true})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	ids := p.SeedCompanies(
		props("name", "Acme Analytics", "domain", "acme.com", "numberofemployees", "50", "hs_additional_domains", "acme.io;acme.net", "createdate", "2026-01-01T00:00:00Z"),
		props("name", "Globex", "domain", "Globex.com", "numberofemployees", "500", "createdate", "2026-02-01T00:00:00Z"),
		props("name", "Initech", "numberofemployees", "5", "website", "https://initech.example", "createdate", "2026-03-01T00:00:00Z"),
	)
	f := func(prop, op string, extra map[string]any) map[string]any {
		m := map[string]any{"propertyName": prop, "operator": op}
		for k, v := range extra {
			m[k] = v
		}
		return map[string]any{"filterGroups": []map[string]any{{"filters": []map[string]any{m}}}, "sorts": []any{"hs_object_id"}}
	}
	cases := []struct {
		name string
		body map[string]any
		want []string
	}{
		{"EQ is case-insensitive", f("domain", "EQ", map[string]any{"value": "ACME.com"}), ids[:1]},
		{"NEQ includes records without the property", f("domain", "NEQ", map[string]any{"value": "acme.com"}), ids[1:]},
		{"GT on numbers", f("numberofemployees", "GT", map[string]any{"value": "49"}), ids[:2]},
		{"LTE on numbers", f("numberofemployees", "LTE", map[string]any{"value": "50"}), []string{ids[0], ids[2]}},
		{"BETWEEN", f("numberofemployees", "BETWEEN", map[string]any{"value": "10", "highValue": "500"}), ids[:2]},
		{"IN matches lower-case values", f("domain", "IN", map[string]any{"values": []string{"globex.com", "nope.com"}}), ids[1:2]},
		{"IN with upper-case values finds nothing", f("domain", "IN", map[string]any{"values": []string{"Globex.com"}}), nil},
		{"NOT_IN", f("domain", "NOT_IN", map[string]any{"values": []string{"acme.com"}}), ids[1:]},
		{"HAS_PROPERTY", f("domain", "HAS_PROPERTY", nil), ids[:2]},
		{"NOT_HAS_PROPERTY", f("domain", "NOT_HAS_PROPERTY", nil), ids[2:]},
		{"CONTAINS_TOKEN on aliases", f("hs_additional_domains", "CONTAINS_TOKEN", map[string]any{"value": "acme.net"}), ids[:1]},
		{"CONTAINS_TOKEN wildcard", f("website", "CONTAINS_TOKEN", map[string]any{"value": "*initech*"}), ids[2:]},
		{"GTE on datetime with epoch ms", f("createdate", "GTE", map[string]any{"value": strconv.FormatInt(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), 10)}), ids[1:]},
		{"groups are ORed", map[string]any{"filterGroups": []map[string]any{
			{"filters": []map[string]any{{"propertyName": "domain", "operator": "EQ", "value": "acme.com"}}},
			{"filters": []map[string]any{{"propertyName": "name", "operator": "EQ", "value": "initech"}}},
		}, "sorts": []any{"hs_object_id"}}, []string{ids[0], ids[2]}},
		{"sort descending (object form)", map[string]any{"sorts": []any{map[string]any{"propertyName": "numberofemployees", "direction": "DESCENDING"}}}, []string{ids[1], ids[0], ids[2]}},
		{"sort descending (string form)", map[string]any{"sorts": []any{"-createdate"}}, []string{ids[2], ids[1], ids[0]}},
		{"query text", map[string]any{"query": "glob"}, ids[1:2]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var page searchPage
			a.do("POST", "/crm/v3/objects/companies/search", tc.body).expect(t, 200).decode(t, &page)
			var got []string
			for _, r := range page.Results {
				got = append(got, r.ID)
			}
			if !slices.Equal(got, tc.want) || page.Total != len(tc.want) {
				t.Fatalf("got %v (total %d), want %v", got, page.Total, tc.want)
			}
		})
	}
}

func TestSearchIndexLag(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := NewTest(t, Options{Clock: clock.Now, SearchIndexLag: 5 * time.Second, DisableRateLimits: true})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	seeded := p.SeedCompanies(props("name", "Seeded", "domain", "seed.com"))

	search := func(domain string) []objectWire {
		var page searchPage
		a.do("POST", "/crm/v3/objects/companies/search", map[string]any{
			"filterGroups": []map[string]any{{"filters": []map[string]any{{"propertyName": "domain", "operator": "EQ", "value": domain}}}},
			"properties":   []string{"name", "domain"},
		}).expect(t, http.StatusOK).decode(t, &page)
		return page.Results
	}
	if len(search("seed.com")) != 1 {
		t.Fatal("seeded records must be searchable at once")
	}

	var created objectWire
	a.do("POST", "/crm/v3/objects/companies", map[string]any{"properties": props("name", "Fresh", "domain", "fresh.com")}).expect(t, 201).decode(t, &created)
	if got := search("fresh.com"); len(got) != 0 {
		t.Fatalf("a new record is searchable before the lag: %v", got)
	}
	// Reads by id are not lagged.
	a.do("GET", "/crm/v3/objects/companies/"+created.ID, nil).expect(t, 200)

	clock.Advance(5 * time.Second)
	if got := search("fresh.com"); len(got) != 1 || got[0].Properties["name"] != "Fresh" {
		t.Fatalf("after the lag: %v", got)
	}

	// An update shows the old version until the lag has passed.
	a.do("PATCH", "/crm/v3/objects/companies/"+seeded[0], map[string]any{"properties": props("name", "Renamed")}).expect(t, 200)
	clock.Advance(4 * time.Second)
	if got := search("seed.com"); len(got) != 1 || got[0].Properties["name"] != "Seeded" {
		t.Fatalf("during the lag: %v", got)
	}
	clock.Advance(time.Second)
	if got := search("seed.com"); len(got) != 1 || got[0].Properties["name"] != "Renamed" {
		t.Fatalf("after the lag: %v", got)
	}

	// Deletes linger in the index for the lag too.
	a.do("DELETE", "/crm/v3/objects/companies/"+seeded[0], nil).expect(t, 204)
	if len(search("seed.com")) != 1 {
		t.Fatal("a deleted record left the index before the lag")
	}
	clock.Advance(5 * time.Second)
	if len(search("seed.com")) != 0 {
		t.Fatal("a deleted record is still searchable after the lag")
	}
}
