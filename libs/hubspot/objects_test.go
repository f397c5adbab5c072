package hubspot_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
)

func TestObjects_CRUDAndPaging(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, nil)
	ctx := testCtx(t)

	created, err := c.Create(ctx, hubspot.Companies, hubspot.CreateInput{Properties: map[string]string{"name": "Acme", "domain": "acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == "" || created.Properties["domain"] != "acme.example" || created.CreatedAt.IsZero() {
		t.Fatalf("created = %+v", created)
	}
	got, err := c.Get(ctx, hubspot.Companies, created.ID, hubspot.GetOptions{Properties: []string{"name", "domain"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Properties["name"] != "Acme" {
		t.Fatalf("get = %+v", got)
	}
	upd, err := c.Update(ctx, hubspot.Companies, created.ID, "", map[string]string{"city": "Berlin"})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Properties["city"] != "Berlin" {
		t.Fatalf("update = %+v", upd)
	}
	// An update answers with what it wrote and the record's id and dates, not the whole
	// record (HubSpot's update examples echo the request's properties).
	if _, ok := upd.Properties["domain"]; ok || upd.Properties["hs_object_id"] != created.ID || upd.Properties["hs_lastmodifieddate"] == "" {
		t.Fatalf("update answered with properties %v, want city, hs_object_id and the dates", upd.Properties)
	}
	bres, err := c.BatchUpdate(ctx, hubspot.Companies, []hubspot.BatchInput{{ID: created.ID, Properties: map[string]string{"city": "Bonn"}}})
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := bres.Result(0); !ok || o.Properties["city"] != "Bonn" || o.Properties["name"] != "" || o.Properties["hs_object_id"] != created.ID {
		t.Fatalf("batch update answered with %+v, want city and hs_object_id only among the record's values", o)
	}
	// Validation errors are typed and never retried.
	_, err = c.Update(ctx, hubspot.Companies, created.ID, "", map[string]string{"numberofemployees": "many"})
	var he *hubspot.Error
	if !errors.As(err, &he) || !hubspot.IsValidation(err) || he.Category != "VALIDATION_ERROR" || he.CorrelationID == "" || he.Attempts != 1 {
		t.Fatalf("bad number: err = %#v", err)
	}

	// 250 more companies: List pages by 100, ListAll sees every one once.
	var ids []string
	for i := range 250 {
		ids = append(ids, p.SeedCompanies(map[string]string{"name": fmt.Sprintf("Co %d", i)})...)
	}
	page, err := c.List(ctx, hubspot.Companies, hubspot.ListOptions{Limit: 100, Properties: []string{"name"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Results) != 100 || page.Paging.NextAfter() == "" {
		t.Fatalf("first page: %d results, next %q", len(page.Results), page.Paging.NextAfter())
	}
	seen := map[string]bool{}
	for o, err := range c.ListAll(ctx, hubspot.Companies, hubspot.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if seen[o.ID] {
			t.Fatalf("ListAll returned %s twice", o.ID)
		}
		seen[o.ID] = true
	}
	if len(seen) != 251 || !seen[created.ID] || !seen[ids[249]] {
		t.Fatalf("ListAll saw %d records, want 251", len(seen))
	}
	if _, err := c.List(ctx, hubspot.Companies, hubspot.ListOptions{Limit: 101}); err == nil {
		t.Fatal("List accepted limit 101")
	}

	if err := c.Archive(ctx, hubspot.Companies, created.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, hubspot.Companies, created.ID, hubspot.GetOptions{})
	if !hubspot.IsNotFound(err) {
		t.Fatalf("get archived: %v, want not found", err)
	}

	// Contacts by unique property.
	ct, err := c.Create(ctx, hubspot.Contacts, hubspot.CreateInput{Properties: map[string]string{"email": "Ada@Example.com", "firstname": "Ada"}})
	if err != nil {
		t.Fatal(err)
	}
	byEmail, err := c.Get(ctx, hubspot.Contacts, "ada@example.com", hubspot.GetOptions{IDProperty: "email"})
	if err != nil || byEmail.ID != ct.ID {
		t.Fatalf("get by email: %+v, %v", byEmail, err)
	}
	_, err = c.Create(ctx, hubspot.Contacts, hubspot.CreateInput{Properties: map[string]string{"email": "ada@example.com"}})
	if !hubspot.IsConflict(err) {
		t.Fatalf("duplicate email: %v, want a conflict", err)
	}
	// Tasks need hs_timestamp.
	_, err = c.Create(ctx, hubspot.Tasks, hubspot.CreateInput{Properties: map[string]string{"hs_task_subject": "Call"}})
	if !hubspot.IsValidation(err) {
		t.Fatalf("task without hs_timestamp: %v, want validation error", err)
	}
	task, err := c.Create(ctx, hubspot.Tasks, hubspot.CreateInput{
		Properties:   map[string]string{"hs_task_subject": "Call", "hs_timestamp": "2026-12-01T10:00:00Z"},
		Associations: []hubspot.AssociationTo{{To: hubspot.ObjectID{ID: ct.ID}, Types: []hubspot.AssociationSpec{hubspot.Defined(hubspot.AssocTaskToContact)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	assoc, err := c.ReadAssociations(ctx, hubspot.Tasks, task.ID, hubspot.Contacts, "", 0)
	if err != nil || len(assoc.Results) != 1 || assoc.Results[0].ToObjectID != ct.ID {
		t.Fatalf("task associations = %+v, %v", assoc, err)
	}
}

func TestBatch_MultiStatusMapsErrorsToInputs(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, nil)
	ctx := testCtx(t)

	t.Run("create", func(t *testing.T) {
		res, err := c.BatchCreate(ctx, hubspot.Companies, []hubspot.CreateInput{
			{Properties: map[string]string{"name": "ok-0"}},
			{Properties: map[string]string{"name": "bad", "no_such_property": "x"}},
			{Properties: map[string]string{"name": "ok-2"}},
			{Properties: map[string]string{"numberofemployees": "lots"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if !res.MultiStatus || len(res.Results) != 2 || len(res.Errors) != 2 {
			t.Fatalf("result = %+v", res)
		}
		for _, i := range []int{0, 2} {
			o, ok := res.Result(i)
			if !ok || o.Properties["name"] != fmt.Sprintf("ok-%d", i) {
				t.Errorf("Result(%d) = %+v, %v", i, o, ok)
			}
			if f := res.Failed(i); len(f) != 0 {
				t.Errorf("Failed(%d) = %v", i, f)
			}
		}
		for _, i := range []int{1, 3} {
			f := res.Failed(i)
			if len(f) != 1 || f[0].Category != "VALIDATION_ERROR" || f[0].Message == "" {
				t.Errorf("Failed(%d) = %+v", i, f)
			}
			if _, ok := res.Result(i); ok {
				t.Errorf("Result(%d) present for a failed input", i)
			}
		}
	})

	ids := p.SeedCompanies(map[string]string{"name": "a"}, map[string]string{"name": "b"}, map[string]string{"name": "c"})
	t.Run("update", func(t *testing.T) {
		res, err := c.BatchUpdate(ctx, hubspot.Companies, []hubspot.BatchInput{
			{ID: ids[0], Properties: map[string]string{"city": "Oslo"}},
			{ID: "999999999", Properties: map[string]string{"city": "Nowhere"}},
			{ID: ids[2], Properties: map[string]string{"industry": "NOT_AN_OPTION"}},
			{ID: ids[1], Properties: map[string]string{"city": "Rome"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := res.Result(3); !ok || o.ID != ids[1] || o.Properties["city"] != "Rome" {
			t.Errorf("Result(3) = %+v %v", o, ok)
		}
		if f := res.Failed(1); len(f) != 1 || f[0].Category != "OBJECT_NOT_FOUND" || f[0].ID != "999999999" {
			t.Errorf("Failed(1) = %+v", f)
		}
		if f := res.Failed(2); len(f) != 1 || f[0].Category != "VALIDATION_ERROR" {
			t.Errorf("Failed(2) = %+v", f)
		}
		if props, _ := p.Object("companies", ids[0]); props["city"] != "Oslo" {
			t.Errorf("sandbox has city %q for %s", props["city"], ids[0])
		}
	})
	t.Run("read", func(t *testing.T) {
		res, err := c.BatchRead(ctx, hubspot.Companies, hubspot.BatchReadRequest{IDs: []string{ids[2], "424242", ids[0]}, Properties: []string{"name"}})
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := res.Result(2); !ok || o.ID != ids[0] || o.Properties["name"] != "a" {
			t.Errorf("Result(2) = %+v %v", o, ok)
		}
		if f := res.Failed(1); len(f) != 1 || !strings.Contains(f[0].Category, "NOT_FOUND") {
			t.Errorf("Failed(1) = %+v (errors %+v)", f, res.Errors)
		}
	})
	t.Run("upsert", func(t *testing.T) {
		p.SeedContacts(map[string]string{"email": "known@example.com", "firstname": "Old"})
		res, err := c.BatchUpsert(ctx, hubspot.Contacts, []hubspot.BatchInput{
			{ID: "known@example.com", IDProperty: "email", Properties: map[string]string{"firstname": "New"}},
			{ID: "fresh@example.com", IDProperty: "email", Properties: map[string]string{"firstname": "Fresh"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		known, ok0 := res.Result(0)
		fresh, ok1 := res.Result(1)
		if !ok0 || !ok1 || known.New || !fresh.New || known.Properties["firstname"] != "New" {
			t.Fatalf("upsert results = %+v / %+v", known, fresh)
		}
		if _, err := c.BatchUpsert(ctx, hubspot.Contacts, []hubspot.BatchInput{{ID: "x@example.com"}}); err == nil ||
			!strings.Contains(err.Error(), "inputs[0]") {
			t.Fatalf("upsert without IDProperty: %v", err)
		}
	})
	t.Run("archive", func(t *testing.T) {
		if err := c.BatchArchive(ctx, hubspot.Companies, []string{ids[1], ids[2]}); err != nil {
			t.Fatal(err)
		}
		if n := len(p.IDs("companies")); n != 3 { // 2 created in "create" + ids[0]
			t.Fatalf("%d live companies after archive, want 3", n)
		}
	})
}

func TestBatch_SizeLimitAndChunking(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, nil)
	ctx := testCtx(t)

	records := make([]map[string]string, 250)
	for i := range records {
		records[i] = map[string]string{"name": fmt.Sprintf("c%d", i)}
	}
	ids := p.SeedCompanies(records...)
	inputs := make([]hubspot.BatchInput, len(ids))
	for i, id := range ids {
		inputs[i] = hubspot.BatchInput{ID: id, Properties: map[string]string{"city": "Lyon"}}
	}
	inputs[150].Properties = map[string]string{"numberofemployees": "NaN-ish"}

	p.ResetStats()
	if _, err := c.BatchUpdate(ctx, hubspot.Companies, inputs[:101]); !errors.Is(err, hubspot.ErrBatchTooLarge) {
		t.Fatalf("101 inputs: %v, want ErrBatchTooLarge", err)
	}
	if n := totalRequests(p.Stats()); n != 0 {
		t.Fatalf("an oversized batch sent %d requests", n)
	}
	res, err := c.BatchUpdateAll(ctx, hubspot.Companies, inputs)
	if err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if got := st.Requests["POST /crm/v3/objects/{objectType}/batch/update"]; got != 3 {
		t.Fatalf("BatchUpdateAll sent %d requests, want 3 (stats %v)", got, st.Requests)
	}
	if len(res.Errors) != 1 || res.Errors[0].Index != 150 || len(res.Results) != 249 {
		t.Fatalf("errors %+v, %d results", res.Errors, len(res.Results))
	}
	if o, ok := res.Result(249); !ok || o.ID != ids[249] {
		t.Fatalf("Result(249) = %+v %v", o, ok)
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, nil)
	ctx := testCtx(t)
	p.SeedCompanies(
		map[string]string{"name": "Alpha", "domain": "alpha.example", "numberofemployees": "10"},
		map[string]string{"name": "Beta", "domain": "beta.example", "numberofemployees": "500"},
		map[string]string{"name": "Gamma", "domain": "gamma.example", "numberofemployees": "50"},
	)
	page, err := c.Search(ctx, hubspot.Companies, hubspot.SearchRequest{
		FilterGroups: []hubspot.FilterGroup{{Filters: []hubspot.Filter{{PropertyName: "numberofemployees", Operator: hubspot.OpGTE, Value: "50"}}}},
		Sorts:        []hubspot.Sort{{PropertyName: "numberofemployees", Direction: hubspot.Descending}},
		Properties:   []string{"name", "domain"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range page.Results {
		names = append(names, o.Properties["name"])
	}
	if page.Total != 2 || !slices.Equal(names, []string{"Beta", "Gamma"}) {
		t.Fatalf("search = total %d, %v", page.Total, names)
	}
	in, err := c.Search(ctx, hubspot.Companies, hubspot.SearchRequest{
		FilterGroups: []hubspot.FilterGroup{{Filters: []hubspot.Filter{{PropertyName: "domain", Operator: hubspot.OpIn, Values: []string{"alpha.example", "gamma.example"}}}}},
	})
	if err != nil || in.Total != 2 {
		t.Fatalf("IN search: %+v %v", in, err)
	}

	// Client-side validation names the offending part and sends nothing.
	p.ResetStats()
	tooMany := make([]hubspot.FilterGroup, 6)
	for i := range tooMany {
		tooMany[i] = hubspot.FilterGroup{Filters: []hubspot.Filter{{PropertyName: "name", Operator: hubspot.OpEQ, Value: "x"}}}
	}
	bad := []struct {
		req  hubspot.SearchRequest
		want string
	}{
		{hubspot.SearchRequest{FilterGroups: tooMany}, "6 filterGroups"},
		{hubspot.SearchRequest{Limit: 201}, "limit 201"},
		{hubspot.SearchRequest{After: "10000"}, "after 10000"},
		{hubspot.SearchRequest{Sorts: []hubspot.Sort{{PropertyName: "a", Direction: "UP"}}}, "sorts[0]"},
		{hubspot.SearchRequest{FilterGroups: []hubspot.FilterGroup{{Filters: []hubspot.Filter{{PropertyName: "name", Operator: "LIKE"}}}}}, "filterGroups[0].filters[0]"},
		{hubspot.SearchRequest{FilterGroups: []hubspot.FilterGroup{{Filters: []hubspot.Filter{{PropertyName: "name", Operator: hubspot.OpIn}}}}}, "needs values"},
		{hubspot.SearchRequest{Query: strings.Repeat("q", 3001)}, "3001 characters"},
	}
	for _, b := range bad {
		if _, err := c.Search(ctx, hubspot.Companies, b.req); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Search(%+v) = %v, want an error mentioning %q", b.req, err, b.want)
		}
	}
	if n := totalRequests(p.Stats()); n != 0 {
		t.Errorf("invalid searches sent %d requests", n)
	}
	// The server's validation comes back typed.
	_, err = c.Search(ctx, hubspot.Companies, hubspot.SearchRequest{
		FilterGroups: []hubspot.FilterGroup{{Filters: []hubspot.Filter{{PropertyName: "no_such_prop", Operator: hubspot.OpEQ, Value: "x"}}}},
	})
	if !hubspot.IsValidation(err) {
		t.Fatalf("unknown property: %v, want a validation error", err)
	}
}

func TestDateVersionedPaths(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{})
	rec := &recorder{base: http.DefaultTransport}
	c := newClient(t, srv, p, func(cfg *hubspot.Config) {
		cfg.APIVersion = "2026-09"
		cfg.HTTPClient = &http.Client{Transport: rec}
	})
	ctx := testCtx(t)
	co, err := c.Create(ctx, hubspot.Companies, hubspot.CreateInput{Properties: map[string]string{"name": "Dated"}})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.Create(ctx, hubspot.Contacts, hubspot.CreateInput{Properties: map[string]string{"email": "d@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.BatchUpdate(ctx, hubspot.Companies, []hubspot.BatchInput{{ID: co.ID, Properties: map[string]string{"city": "Paris"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Search(ctx, hubspot.Companies, hubspot.SearchRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := c.AssociateDefault(ctx, hubspot.Contacts, ct.ID, hubspot.Companies, co.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BatchAssociateDefault(ctx, hubspot.Contacts, hubspot.Companies, []hubspot.AssociationInput{{FromID: ct.ID, ToID: co.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetProperties(ctx, hubspot.Companies); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListOwners(ctx, hubspot.OwnerListOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"POST /crm/objects/2026-09/companies",
		"POST /crm/objects/2026-09/contacts",
		"POST /crm/objects/2026-09/companies/batch/update",
		"POST /crm/objects/2026-09/companies/search",
		"PUT /crm/objects/2026-09/contacts/" + ct.ID + "/associations/default/companies/" + co.ID,
		"POST /crm/associations/2026-09/contacts/companies/batch/associate/default",
		"GET /crm/properties/2026-09/companies",
		"GET /crm/owners/2026-09",
	}
	if got := rec.requests(); !slices.Equal(got, want) {
		t.Fatalf("requests:\n got %q\nwant %q", got, want)
	}
	if _, err := hubspot.New(hubspot.Config{Auth: hubspot.BearerToken("x"), APIVersion: "v4"}); err == nil {
		t.Fatal("New accepted APIVersion v4")
	}
}

func TestNew_Validation(t *testing.T) {
	t.Parallel()
	gov, err := quota.New(quota.Config{Portals: map[int64]quota.Limits{7: {Burst: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	auth := hubspot.BearerToken("t")
	cases := []struct {
		name string
		cfg  hubspot.Config
		want string
	}{
		{"no auth", hubspot.Config{}, "Auth"},
		{"relative base", hubspot.Config{Auth: auth, BaseURL: "/api"}, "BaseURL"},
		{"bad version", hubspot.Config{Auth: auth, APIVersion: "2026-9"}, "APIVersion"},
		{"governor without portal", hubspot.Config{Auth: auth, Governor: gov}, "PortalID"},
		{"governor without limits for the portal", hubspot.Config{Auth: auth, Governor: gov, PortalID: 8}, "portal 8"},
		{"bad class", hubspot.Config{Auth: auth, DefaultClass: 9}, "DefaultClass"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := hubspot.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := hubspot.New(hubspot.Config{Auth: auth, Governor: gov, PortalID: 7}); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}
