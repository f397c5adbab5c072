package hubspottest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"testing"
)

// postImport sends a multipart import the way HubSpot's docs describe it.
func postImport(t *testing.T, s *Server, p *Portal, req map[string]any, csv string) response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	reqJSON, _ := json.Marshal(req)
	if err := mw.WriteField("importRequest", string(reqJSON)); err != nil {
		t.Fatal(err)
	}
	fw, err := mw.CreateFormFile("files", "companies.csv")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(fw, csv)
	_ = mw.Close()
	hr, _ := http.NewRequest("POST", s.URL+"/crm/v3/imports", &buf)
	hr.Header.Set("Authorization", "Bearer "+p.Token())
	hr.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, raw: raw}
}

func importReq(op string, mappings ...map[string]any) map[string]any {
	return map[string]any{
		"name":             "intent-sync",
		"importOperations": map[string]string{"0-2": op},
		"dateFormat":       "YEAR_MONTH_DAY",
		"files": []map[string]any{{
			"fileName": "companies.csv", "fileFormat": "CSV",
			"fileImportPage": map[string]any{"hasHeader": true, "columnMappings": mappings},
		}},
	}
}

type importStatus struct {
	ID                  string   `json:"id"`
	State               string   `json:"state"`
	MappedObjectTypeIDs []string `json:"mappedObjectTypeIds"`
	Metadata            struct {
		Counters map[string]int `json:"counters"`
		FileIDs  []string       `json:"fileIds"`
	} `json:"metadata"`
}

func TestImportLifecycle(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{DisableRateLimits: true})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	a.do("POST", "/crm/v3/properties/companies", map[string]any{"name": "intent_score", "label": "Intent score", "type": "number", "fieldType": "number", "groupName": "companyinformation"}).expect(t, 201)
	ids := p.SeedCompanies(props("name", "Acme", "domain", "acme.com"), props("name", "Globex", "domain", "globex.com"))

	csv := "Record ID,Intent Score,Industry\n" +
		ids[0] + ",87,BANKING\n" + // ok
		ids[1] + ",high,RETAIL\n" + // bad number: row still updates industry
		"999999,10,\n" + // unknown record
		"abc,10,\n" + // malformed record id
		ids[0] + ",5,SPACESHIPS\n" // bad enumeration option
	var st importStatus
	postImport(t, s, p, importReq("UPDATE",
		map[string]any{"columnObjectTypeId": "0-2", "columnName": "Record ID", "propertyName": "hs_object_id", "columnType": "HUBSPOT_OBJECT_ID"},
		map[string]any{"columnObjectTypeId": "0-2", "columnName": "Intent Score", "propertyName": "intent_score"},
		map[string]any{"columnObjectTypeId": "0-2", "columnName": "Industry", "propertyName": "industry"},
	), csv).expect(t, 200).decode(t, &st)
	if st.State != ImportStarted || st.ID == "" || !slices.Equal(st.MappedObjectTypeIDs, []string{"0-2"}) {
		t.Fatalf("import response = %+v", st)
	}

	eventually(t, "import DONE", func() bool {
		a.do("GET", "/crm/v3/imports/"+st.ID, nil).expect(t, 200).decode(t, &st)
		return st.State == ImportDone
	})
	want := map[string]int{"TOTAL_ROWS": 5, "UPDATED_OBJECTS": 3, "UNIQUE_OBJECTS_WRITTEN": 2}
	for k, v := range want {
		if st.Metadata.Counters[k] != v {
			t.Fatalf("counters = %v, want %s=%d", st.Metadata.Counters, k, v)
		}
	}
	acme, _ := p.Object("companies", ids[0])
	if acme["intent_score"] != "5" || acme["industry"] != "BANKING" {
		t.Fatalf("acme = %v (the last row sets intent 5; its bad industry is skipped)", acme)
	}
	globex, _ := p.Object("companies", ids[1])
	if globex["industry"] != "RETAIL" || globex["intent_score"] != "" {
		t.Fatalf("globex = %v", globex)
	}

	var errs struct {
		Results []importErrorWire `json:"results"`
		Paging  *paging           `json:"paging"`
	}
	a.do("GET", "/crm/v3/imports/"+st.ID+"/errors?limit=2", nil).expect(t, 200).decode(t, &errs)
	if len(errs.Results) != 2 || errs.Paging == nil {
		t.Fatalf("errors page 1 = %+v", errs)
	}
	all := slices.Clone(errs.Results)
	var page2 struct {
		Results []importErrorWire `json:"results"`
		Paging  *paging           `json:"paging"`
	}
	a.do("GET", "/crm/v3/imports/"+st.ID+"/errors?limit=2&after="+errs.Paging.Next.After, nil).expect(t, 200).decode(t, &page2)
	if page2.Paging != nil {
		t.Fatalf("errors page 2 has a next page: %+v", page2.Paging)
	}
	all = append(all, page2.Results...)
	type row struct {
		errType string
		line    int
	}
	var got []row
	for _, e := range all {
		got = append(got, row{e.ErrorType, e.SourceData.LineNumber})
		if e.ObjectTypeID != "0-2" || e.ObjectType != "COMPANY" || len(e.SourceData.RowData) != 3 {
			t.Fatalf("error = %+v", e)
		}
	}
	wantRows := []row{{"COULD_NOT_PARSE_NUMBER", 3}, {"INVALID_OBJECT_ID", 4}, {"INVALID_RECORD_ID", 5}, {"INVALID_ENUMERATION_OPTION", 6}}
	if !slices.Equal(got, wantRows) {
		t.Fatalf("import errors = %v, want %v", got, wantRows)
	}
	if sts := p.Stats(); sts.Imports != 1 || sts.ImportRows != 5 {
		t.Fatalf("stats imports = %d rows = %d", sts.Imports, sts.ImportRows)
	}
}

func TestImportUpsertByAlternateID(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{DisableRateLimits: true})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	ids := p.SeedCompanies(props("name", "Acme", "domain", "acme.com"), props("name", "Dup 1", "domain", "dup.com"), props("name", "Dup 2", "domain", "dup.com"))
	csv := "Domain,Name\nacme.com,Acme Inc\nnew.io,Newco\ndup.com,Which\nnot a domain,X\n"
	var st importStatus
	postImport(t, s, p, importReq("UPSERT",
		map[string]any{"columnObjectTypeId": "0-2", "columnName": "Domain", "propertyName": "domain", "columnType": "HUBSPOT_ALTERNATE_ID"},
		map[string]any{"columnObjectTypeId": "0-2", "columnName": "Name", "propertyName": "name"},
	), csv).expect(t, 200).decode(t, &st)
	eventually(t, "import DONE", func() bool {
		a.do("GET", "/crm/imports/2026-09/"+st.ID, nil).expect(t, 200).decode(t, &st)
		return st.State == ImportDone
	})
	if st.Metadata.Counters["CREATED_OBJECTS"] != 1 || st.Metadata.Counters["UPDATED_OBJECTS"] != 1 {
		t.Fatalf("counters = %v", st.Metadata.Counters)
	}
	if o, _ := p.Object("companies", ids[0]); o["name"] != "Acme Inc" {
		t.Fatalf("acme = %v", o)
	}
	var errs struct {
		Results []importErrorWire `json:"results"`
	}
	a.do("GET", "/crm/v3/imports/"+st.ID+"/errors", nil).expect(t, 200).decode(t, &errs)
	var types []string
	for _, e := range errs.Results {
		types = append(types, e.ErrorType)
	}
	if !slices.Equal(types, []string{"MULTIPLE_COMPANIES_WITH_THIS_DOMAIN", "INVALID_DOMAIN"}) {
		t.Fatalf("error types = %v", types)
	}
}

func TestImportRequestValidation(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{DisableRateLimits: true})
	p := s.AddPortal(PortalOptions{})
	cases := []struct {
		name string
		req  map[string]any
	}{
		{"unknown property", importReq("UPSERT", map[string]any{"columnObjectTypeId": "0-2", "columnName": "X", "propertyName": "nope"})},
		{"update without id column", importReq("UPDATE", map[string]any{"columnObjectTypeId": "0-2", "columnName": "Name", "propertyName": "name"})},
		{"bad operation", importReq("MERGE", map[string]any{"columnObjectTypeId": "0-2", "columnName": "Name", "propertyName": "name"})},
		{"read-only property", importReq("UPSERT", map[string]any{"columnObjectTypeId": "0-2", "columnName": "N", "propertyName": "num_associated_contacts"})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := postImport(t, s, p, tc.req, "Name\nx\n").expect(t, 400).errorBody(t)
			if e.Category != "VALIDATION_ERROR" {
				t.Fatalf("error = %+v", e)
			}
		})
	}
	if p.Stats().Imports != 0 {
		t.Fatal("rejected imports were counted")
	}
}

func TestImportFailsOnUnreadableCSV(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{DisableRateLimits: true})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	var st importStatus
	postImport(t, s, p, importReq("CREATE", map[string]any{"columnObjectTypeId": "0-2", "columnName": "Name", "propertyName": "name"}),
		"Name\n\"unterminated\n").expect(t, 200).decode(t, &st)
	eventually(t, "import FAILED", func() bool {
		a.do("GET", "/crm/v3/imports/"+st.ID, nil).expect(t, 200).decode(t, &st)
		return st.State == ImportFailed
	})
}
