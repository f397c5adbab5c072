package hubspottest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestAuthentication(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	p := s.AddPortal(PortalOptions{})
	cases := []struct {
		name  string
		token string
	}{
		{"missing header", ""},
		{"unknown token", "pat-na1-not-a-token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &api{t: t, base: s.URL, token: tc.token}
			e := a.do("GET", "/crm/v3/objects/contacts", nil).expect(t, http.StatusUnauthorized).errorBody(t)
			if e.Category != "INVALID_AUTHENTICATION" || !strings.HasPrefix(e.Message, "Authentication credentials not found.") {
				t.Fatalf("401 body = %+v", e)
			}
		})
	}
	if got := p.Stats().Requests; len(got) != 0 {
		t.Fatalf("unauthenticated requests were counted for the portal: %v", got)
	}
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	for _, prop := range []map[string]any{
		{"name": "renewal_date", "label": "Renewal date", "type": "date", "fieldType": "date", "groupName": "companyinformation"},
		{"name": "is_partner", "label": "Partner", "type": "bool", "fieldType": "booleancheckbox", "groupName": "companyinformation"},
	} {
		a.do("POST", "/crm/v3/properties/companies", prop).expect(t, http.StatusCreated)
	}

	cases := []struct {
		name     string
		object   string
		props    map[string]string
		status   int
		category string
		code     string // errors[0].code
		property string // errors[0].context.propertyName
		message  string // message prefix
	}{
		{"unknown property", "companies", props("name", "Acme", "favourite_colour", "blue"), 400, "VALIDATION_ERROR", "PROPERTY_DOESNT_EXIST", "favourite_colour", "Property values were not valid: "},
		{"number is not a number", "companies", props("numberofemployees", "many"), 400, "VALIDATION_ERROR", "INVALID_FLOAT", "numberofemployees", "Property values were not valid: "},
		{"datetime is not a date", "deals", props("dealname", "D", "closedate", "next tuesday"), 400, "VALIDATION_ERROR", "INVALID_DATETIME", "closedate", ""},
		{"date not at midnight", "companies", props("renewal_date", "1700000000123"), 400, "VALIDATION_ERROR", "INVALID_DATE", "renewal_date", ""},
		{"bool is not a bool", "companies", props("is_partner", "maybe"), 400, "VALIDATION_ERROR", "INVALID_BOOLEAN", "is_partner", ""},
		{"enumeration option not allowed", "companies", props("industry", "SPACESHIPS"), 400, "VALIDATION_ERROR", "INVALID_OPTION", "industry", ""},
		{"read-only hs_object_id", "companies", props("hs_object_id", "5"), 400, "VALIDATION_ERROR", "READ_ONLY_VALUE", "hs_object_id", ""},
		{"read-only computed count", "companies", props("num_associated_contacts", "3"), 400, "VALIDATION_ERROR", "READ_ONLY_VALUE", "num_associated_contacts", ""},
		{"read-only last modified", "contacts", props("lastmodifieddate", "1700000000000"), 400, "VALIDATION_ERROR", "READ_ONLY_VALUE", "lastmodifieddate", ""},
		{"invalid email", "contacts", props("email", "not-an-email"), 400, "VALIDATION_ERROR", "INVALID_EMAIL", "email", ""},
		{"unknown owner", "deals", props("dealname", "D", "hubspot_owner_id", "999"), 400, "VALIDATION_ERROR", "INVALID_OWNER_ID", "hubspot_owner_id", ""},
		{"task without hs_timestamp", "tasks", props("hs_task_subject", "Call"), 400, "VALIDATION_ERROR", "", "", "Error creating TASK. Some required properties were not set."},
		{"note without hs_timestamp", "notes", props("hs_note_body", "Hi"), 400, "VALIDATION_ERROR", "", "", "Error creating NOTE. Some required properties were not set."},
		{"valid task", "tasks", props("hs_timestamp", "2026-03-02T10:00:00Z", "hs_task_subject", "Call", "hs_task_priority", "HIGH"), 201, "", "", "", ""},
		{"valid note with epoch ms", "notes", props("hs_timestamp", "1772445600000", "hs_note_body", "Intent spike"), 201, "", "", "", ""},
		{"valid company", "companies", props("name", "Acme", "domain", "acme.com", "industry", "COMPUTER_SOFTWARE", "renewal_date", "2026-06-01", "is_partner", "TRUE"), 201, "", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := p.Count(tc.object)
			r := a.do("POST", "/crm/v3/objects/"+tc.object, map[string]any{"properties": tc.props}).expect(t, tc.status)
			if tc.status == 201 {
				if p.Count(tc.object) != before+1 {
					t.Fatalf("record not stored")
				}
				return
			}
			if p.Count(tc.object) != before {
				t.Fatalf("a rejected create stored a record")
			}
			e := r.errorBody(t)
			if e.Category != tc.category {
				t.Errorf("category = %q, want %q", e.Category, tc.category)
			}
			if !strings.HasPrefix(e.Message, tc.message) {
				t.Errorf("message = %q, want prefix %q", e.Message, tc.message)
			}
			if tc.code != "" {
				if len(e.Errors) == 0 || e.Errors[0].Code != tc.code || !slices.Equal(e.Errors[0].Context["propertyName"], []string{tc.property}) {
					t.Fatalf("errors = %+v, want code %s for %s", e.Errors, tc.code, tc.property)
				}
				if !strings.Contains(e.Message, `"error":"`+tc.code+`"`) {
					t.Errorf("message does not embed the validation result: %s", e.Message)
				}
			}
			if strings.HasPrefix(tc.message, "Error creating") && !slices.Equal(e.Context["properties"], []string{"hs_timestamp"}) {
				t.Errorf("context = %v, want properties [hs_timestamp]", e.Context)
			}
		})
	}
}

func TestCreateStoresNormalisedValues(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	var obj objectWire
	a.do("POST", "/crm/v3/objects/contacts", map[string]any{"properties": map[string]any{"email": "Ana.Smith@Example.COM", "firstname": "Ana"}}).expect(t, 201).decode(t, &obj)
	got, _ := p.Object("contacts", obj.ID)
	want := props("email", "ana.smith@example.com", "hs_email_domain", "example.com", "hs_object_id", obj.ID, "num_associated_deals", "0")
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if got["createdate"] == "" || got["createdate"] != got["lastmodifieddate"] {
		t.Errorf("createdate %q / lastmodifieddate %q not stamped", got["createdate"], got["lastmodifieddate"])
	}
	// JSON numbers and booleans are accepted as property values.
	var deal objectWire
	a.do("POST", "/crm/v3/objects/deals", `{"properties":{"dealname":"D","amount":1250.5,"dealstage":"closedwon"}}`).expect(t, 201).decode(t, &deal)
	if deal.Properties["amount"] != "1250.5" || deal.Properties["hs_is_closed"] != "true" {
		t.Fatalf("deal properties = %v", deal.Properties)
	}
}

func TestMalformedJSON(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	a := newAPI(t, s, s.AddPortal(PortalOptions{}))
	e := a.do("POST", "/crm/v3/objects/companies", "{\n  \"properties\": {\"name\": }").expect(t, 400).errorBody(t)
	if e.Category != "VALIDATION_ERROR" || !strings.HasPrefix(e.Message, "Invalid input JSON on line 2, column") {
		t.Fatalf("error = %+v", e)
	}
}

func TestDuplicateContactEmail(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	var first objectWire
	a.do("POST", "/crm/v3/objects/contacts", map[string]any{"properties": props("email", "ana@acme.com")}).expect(t, 201).decode(t, &first)

	e := a.do("POST", "/crm/v3/objects/contacts", map[string]any{"properties": props("email", "ANA@acme.com")}).expect(t, http.StatusConflict).errorBody(t)
	if e.Category != "CONFLICT" || e.Message != "Contact already exists. Existing ID: "+first.ID {
		t.Fatalf("conflict = %+v", e)
	}
	// Changing another contact's email to a taken one conflicts too.
	var second objectWire
	a.do("POST", "/crm/v3/objects/contacts", map[string]any{"properties": props("email", "bo@acme.com")}).expect(t, 201).decode(t, &second)
	a.do("PATCH", "/crm/v3/objects/contacts/"+second.ID, map[string]any{"properties": props("email", "ana@acme.com")}).expect(t, http.StatusConflict)
	if p.Count("contacts") != 2 {
		t.Fatalf("count = %d, want 2", p.Count("contacts"))
	}
}

func inputs(n int, f func(i int) map[string]any) map[string]any {
	in := make([]map[string]any, n)
	for i := range in {
		in[i] = f(i)
	}
	return map[string]any{"inputs": in}
}

func TestBatchLimit(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	ids := p.SeedCompanies(props("name", "Acme"))
	for _, action := range []string{"read", "create", "update", "upsert", "archive"} {
		t.Run(action, func(t *testing.T) {
			body := inputs(101, func(i int) map[string]any {
				return map[string]any{"id": ids[0], "idProperty": "hs_object_id", "properties": props("name", fmt.Sprint("n", i))}
			})
			e := a.do("POST", "/crm/v3/objects/companies/batch/"+action, body).expect(t, 400).errorBody(t)
			if e.Category != "VALIDATION_ERROR" || e.Message != "The maximum number of inputs supported in a batch request is 100. Please reduce the number of items and try again" {
				t.Fatalf("error = %+v", e)
			}
			if p.Count("companies") != 1 {
				t.Fatalf("a rejected batch changed the data")
			}
		})
	}
	// 100 inputs are fine.
	a.do("POST", "/crm/v3/objects/companies/batch/create", inputs(100, func(i int) map[string]any {
		return map[string]any{"properties": props("name", fmt.Sprint("c", i))}
	})).expect(t, 201)
	if got := p.Stats().BatchInputs["POST /crm/v3/objects/{objectType}/batch/create"]; got != 100 {
		t.Fatalf("batch inputs stat = %d, want 100", got)
	}
	// Reads with property history are capped at 50.
	e := a.do("POST", "/crm/v3/objects/companies/batch/read", map[string]any{"propertiesWithHistory": []string{"name"}, "inputs": inputs(51, func(i int) map[string]any {
		return map[string]any{"id": ids[0]}
	})["inputs"]}).expect(t, 400).errorBody(t)
	if !strings.Contains(e.Message, "for property histories is 50") {
		t.Fatalf("error = %+v", e)
	}
}

// batchResult mirrors BatchResponseSimplePublicObjectWithErrors.
type batchResult struct {
	Status      string          `json:"status"`
	Results     []objectWire    `json:"results"`
	NumErrors   int             `json:"numErrors"`
	Errors      []standardError `json:"errors"`
	StartedAt   string          `json:"startedAt"`
	CompletedAt string          `json:"completedAt"`
}

func TestBatchMultiStatus(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	ids := p.SeedCompanies(props("name", "A"), props("name", "B"))
	existing := p.SeedContacts(props("email", "taken@acme.com"))

	checkShape := func(t *testing.T, b batchResult) {
		t.Helper()
		if b.Status != "COMPLETE" || b.StartedAt == "" || b.CompletedAt == "" || b.NumErrors != len(b.Errors) {
			t.Fatalf("batch envelope = %+v", b)
		}
		for _, e := range b.Errors {
			if e.Status != "error" || e.Context == nil || e.Errors == nil || e.Links == nil {
				t.Fatalf("StandardError lacks required fields: %+v", e)
			}
		}
	}

	t.Run("update reports missing ids per input", func(t *testing.T) {
		var b batchResult
		a.do("POST", "/crm/v3/objects/companies/batch/update", map[string]any{"inputs": []map[string]any{
			{"id": ids[0], "objectWriteTraceId": "t1", "properties": props("name", "A2")},
			{"id": "999999", "objectWriteTraceId": "t2", "properties": props("name", "X")},
		}}).expect(t, http.StatusMultiStatus).decode(t, &b)
		checkShape(t, b)
		if len(b.Results) != 1 || b.Results[0].ObjectWriteTraceID != "t1" || b.Results[0].Properties["name"] != "A2" {
			t.Fatalf("results = %+v", b.Results)
		}
		e := b.Errors[0]
		if b.NumErrors != 1 || e.Category != "OBJECT_NOT_FOUND" || !slices.Equal(e.Context["ids"], []string{"999999"}) || !slices.Equal(e.Context["objectWriteTraceId"], []string{"t2"}) {
			t.Fatalf("error = %+v", e)
		}
		if !strings.HasPrefix(e.Message, "Could not get some COMPANY objects") {
			t.Fatalf("message = %q", e.Message)
		}
	})

	t.Run("create with trace ids keeps the valid inputs", func(t *testing.T) {
		before := p.Count("companies")
		var b batchResult
		a.do("POST", "/crm/v3/objects/companies/batch/create", map[string]any{"inputs": []map[string]any{
			{"objectWriteTraceId": "ok", "properties": props("name", "Good")},
			{"objectWriteTraceId": "bad", "properties": props("name", "Bad", "missing", "1")},
		}}).expect(t, http.StatusMultiStatus).decode(t, &b)
		checkShape(t, b)
		if p.Count("companies") != before+1 || len(b.Results) != 1 || b.Results[0].ObjectWriteTraceID != "ok" {
			t.Fatalf("results = %+v", b.Results)
		}
		e := b.Errors[0]
		if e.Category != "VALIDATION_ERROR" || !slices.Equal(e.Context["objectWriteTraceId"], []string{"bad"}) || !strings.Contains(e.Message, "PROPERTY_DOESNT_EXIST") {
			t.Fatalf("error = %+v", e)
		}
	})

	t.Run("create without trace ids fails as a whole", func(t *testing.T) {
		before := p.Count("companies")
		e := a.do("POST", "/crm/v3/objects/companies/batch/create", map[string]any{"inputs": []map[string]any{
			{"properties": props("name", "Good")},
			{"properties": props("name", "Bad", "missing", "1")},
		}}).expect(t, 400).errorBody(t)
		if e.Category != "VALIDATION_ERROR" || p.Count("companies") != before {
			t.Fatalf("error = %+v, count %d -> %d", e, before, p.Count("companies"))
		}
	})

	t.Run("create conflict carries the existing id", func(t *testing.T) {
		var b batchResult
		a.do("POST", "/crm/v3/objects/contacts/batch/create", map[string]any{"inputs": []map[string]any{
			{"objectWriteTraceId": "0", "properties": props("email", "taken@acme.com")},
			{"objectWriteTraceId": "1", "properties": props("email", "new@acme.com")},
		}}).expect(t, http.StatusMultiStatus).decode(t, &b)
		checkShape(t, b)
		e := b.Errors[0]
		if e.Category != "CONFLICT" || !slices.Equal(e.Context["existingId"], existing) || !slices.Equal(e.Context["objectWriteTraceId"], []string{"0"}) {
			t.Fatalf("error = %+v", e)
		}
	})

	t.Run("read reports missing ids", func(t *testing.T) {
		var b batchResult
		a.do("POST", "/crm/v3/objects/companies/batch/read", map[string]any{
			"properties": []string{"name"}, "propertiesWithHistory": []string{}, "inputs": []map[string]any{{"id": ids[1]}, {"id": "424242"}},
		}).expect(t, http.StatusMultiStatus).decode(t, &b)
		checkShape(t, b)
		if len(b.Results) != 1 || b.Results[0].Properties["name"] != "B" || !slices.Equal(b.Errors[0].Context["ids"], []string{"424242"}) {
			t.Fatalf("read = %+v", b)
		}
	})

	t.Run("a unique value twice in one batch", func(t *testing.T) {
		before := p.Count("contacts")
		a.do("POST", "/crm/v3/objects/contacts/batch/create", map[string]any{"inputs": []map[string]any{
			{"properties": props("email", "twice@acme.com")}, {"properties": props("email", "TWICE@acme.com")},
		}}).expect(t, 400)
		if p.Count("contacts") != before {
			t.Fatal("a rejected batch created contacts")
		}
		var b batchResult
		a.do("POST", "/crm/v3/objects/contacts/batch/create", map[string]any{"inputs": []map[string]any{
			{"objectWriteTraceId": "a", "properties": props("email", "twice@acme.com")}, {"objectWriteTraceId": "b", "properties": props("email", "twice@acme.com")},
		}}).expect(t, http.StatusMultiStatus).decode(t, &b)
		if len(b.Results) != 1 || b.NumErrors != 1 || !slices.Equal(b.Errors[0].Context["objectWriteTraceId"], []string{"b"}) {
			t.Fatalf("batch = %+v", b)
		}
		others := p.SeedContacts(props("email", "c1@acme.com"), props("email", "c2@acme.com"))
		a.do("POST", "/crm/v3/objects/contacts/batch/update", map[string]any{"inputs": []map[string]any{
			{"id": others[0], "properties": props("email", "same@acme.com")}, {"id": others[1], "properties": props("email", "same@acme.com")},
		}}).expect(t, 400)
	})

	t.Run("duplicate ids are rejected", func(t *testing.T) {
		e := a.do("POST", "/crm/v3/objects/companies/batch/update", map[string]any{"inputs": []map[string]any{
			{"id": ids[0], "properties": props("name", "x")}, {"id": ids[0], "properties": props("name", "y")},
		}}).expect(t, 400).errorBody(t)
		if !strings.HasPrefix(e.Message, "Duplicate IDs found in batch input") {
			t.Fatalf("error = %+v", e)
		}
	})
}

func TestBatchUpsert(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	existing := p.SeedContacts(props("email", "ana@acme.com", "firstname", "Ana"))

	var b batchResult
	a.do("POST", "/crm/v3/objects/contacts/batch/upsert", map[string]any{"inputs": []map[string]any{
		{"id": "ana@acme.com", "idProperty": "email", "properties": props("jobtitle", "CTO")},
		{"id": "bo@acme.com", "idProperty": "email", "properties": props("firstname", "Bo")},
	}}).expect(t, 200).decode(t, &b)
	if len(b.Results) != 2 {
		t.Fatalf("results = %+v", b.Results)
	}
	byEmail := map[string]objectWire{}
	for _, r := range b.Results {
		byEmail[r.Properties["email"]] = r
	}
	if ana := byEmail["ana@acme.com"]; ana.ID != existing[0] || ana.New == nil || *ana.New || ana.Properties["jobtitle"] != "CTO" {
		t.Fatalf("ana = %+v", ana)
	}
	if bo := byEmail["bo@acme.com"]; bo.New == nil || !*bo.New || bo.Properties["firstname"] != "Bo" {
		t.Fatalf("bo = %+v", bo)
	}

	// A custom unique property works as idProperty; company domain does not.
	a.do("POST", "/crm/v3/properties/companies", map[string]any{"name": "account_key", "label": "Account key", "type": "string", "fieldType": "text", "groupName": "companyinformation", "hasUniqueValue": true}).expect(t, 201)
	var first, second batchResult
	upsert := map[string]any{"inputs": []map[string]any{{"id": "k-1", "idProperty": "account_key", "properties": props("name", "Acme")}}}
	a.do("POST", "/crm/v3/objects/companies/batch/upsert", upsert).expect(t, 200).decode(t, &first)
	a.do("POST", "/crm/v3/objects/companies/batch/upsert", upsert).expect(t, 200).decode(t, &second)
	if !*first.Results[0].New || *second.Results[0].New || first.Results[0].ID != second.Results[0].ID {
		t.Fatalf("first = %+v, second = %+v", first.Results, second.Results)
	}
	e := a.do("POST", "/crm/v3/objects/companies/batch/upsert", map[string]any{"inputs": []map[string]any{{"id": "acme.com", "idProperty": "domain", "properties": props("name", "x")}}}).expect(t, 400).errorBody(t)
	if e.Message != "Unable to perform update/upsert by non-unique 0-2 property" {
		t.Fatalf("error = %+v", e)
	}
	// Batch update accepts record ids and unique properties, not email.
	e = a.do("POST", "/crm/v3/objects/contacts/batch/update", map[string]any{"inputs": []map[string]any{{"id": "ana@acme.com", "idProperty": "email", "properties": props("jobtitle", "CEO")}}}).expect(t, 400).errorBody(t)
	if e.Message != "Unable to perform update/upsert by non-unique 0-1 property" {
		t.Fatalf("error = %+v", e)
	}
	// A single PATCH by email works.
	a.do("PATCH", "/crm/v3/objects/contacts/ana@acme.com?idProperty=email", map[string]any{"properties": props("jobtitle", "CEO")}).expect(t, 200)
	// Unique values are enforced on writes too.
	a.do("POST", "/crm/v3/objects/companies", map[string]any{"properties": props("account_key", "k-1")}).expect(t, http.StatusConflict)
}

func TestListPagingAndGet(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	var seed []map[string]string
	for i := range 25 {
		seed = append(seed, props("name", fmt.Sprint("Company ", i), "domain", fmt.Sprintf("c%d.example", i)))
	}
	ids := p.SeedCompanies(seed...)

	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		var page struct {
			Results []objectWire `json:"results"`
			Paging  *paging      `json:"paging"`
		}
		a.do("GET", "/crm/v3/objects/companies?limit=10&properties=domain&after="+after, nil).expect(t, 200).decode(t, &page)
		for _, r := range page.Results {
			if r.Properties["domain"] == "" || r.Properties["name"] != "" {
				t.Fatalf("properties = %v, want only the requested one plus defaults", r.Properties)
			}
			got = append(got, r.ID)
		}
		if page.Paging == nil {
			break
		}
		after = page.Paging.Next.After
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("paged ids = %v, want %v", got, ids)
	}
	a.do("GET", "/crm/v3/objects/companies?limit=101", nil).expect(t, 400)

	// Delete, then the record only shows with archived=true.
	a.do("DELETE", "/crm/v3/objects/companies/"+ids[0], nil).expect(t, 204)
	a.do("GET", "/crm/v3/objects/companies/"+ids[0], nil).expect(t, 404)
	var arch objectWire
	a.do("GET", "/crm/v3/objects/companies/"+ids[0]+"?archived=true", nil).expect(t, 200).decode(t, &arch)
	if !arch.Archived || arch.ArchivedAt == "" {
		t.Fatalf("archived record = %+v", arch)
	}

	// idProperty=email finds contacts.
	cid := p.SeedContacts(props("email", "ana@acme.com"))
	var c objectWire
	a.do("GET", "/crm/v3/objects/contacts/ana@acme.com?idProperty=email", nil).expect(t, 200).decode(t, &c)
	if c.ID != cid[0] {
		t.Fatalf("by email = %s, want %s", c.ID, cid[0])
	}
}

func TestDateVersionedPaths(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	ids := p.SeedCompanies(props("name", "Acme", "domain", "acme.com"))
	contact := p.SeedContacts(props("email", "ana@acme.com"))

	var v3, dated objectWire
	a.do("GET", "/crm/v3/objects/companies/"+ids[0], nil).expect(t, 200).decode(t, &v3)
	a.do("GET", "/crm/objects/2026-09/companies/"+ids[0], nil).expect(t, 200).decode(t, &dated)
	if v3.ID != dated.ID || v3.Properties["name"] != dated.Properties["name"] {
		t.Fatalf("v3 %+v != 2026-09 %+v", v3, dated)
	}
	a.do("GET", "/crm/objects/2026-03/0-2/"+ids[0], nil).expect(t, 200)
	a.do("POST", "/crm/objects/2026-03/companies/search", map[string]any{}).expect(t, 200)
	a.do("GET", "/crm/properties/2026-09/companies/domain", nil).expect(t, 200)
	a.do("GET", "/crm/owners/2026-09", nil).expect(t, 200)
	a.do("PUT", "/crm/objects/2026-09/contacts/"+contact[0]+"/associations/default/companies/"+ids[0], nil).expect(t, 200)
	a.do("POST", "/crm/associations/2026-09/contacts/companies/batch/read", map[string]any{"inputs": []map[string]any{{"id": contact[0]}}}).expect(t, 200)

	st := p.Stats()
	if n := st.Requests["GET /crm/v3/objects/{objectType}/{objectId}"]; n != 3 {
		t.Fatalf("requests by route = %v; the dated paths must count under the v3 route", st.Requests)
	}
}
