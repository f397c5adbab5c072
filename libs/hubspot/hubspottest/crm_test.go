package hubspottest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestLists(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{DisableRateLimits: true})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	contacts := p.SeedContacts(props("email", "a@x.com"), props("email", "b@x.com"))

	type listResp struct {
		List listWire `json:"list"`
	}
	var created listResp
	a.do("POST", "/crm/v3/lists", map[string]any{"name": "Intent: hot accounts", "objectTypeId": "0-1", "processingType": "MANUAL"}).expect(t, 200).decode(t, &created)
	if created.List.ListID == "" || created.List.ProcessingType != "MANUAL" || created.List.ObjectTypeID != "0-1" {
		t.Fatalf("created = %+v", created)
	}
	a.do("POST", "/crm/v3/lists", map[string]any{"name": "Intent: hot accounts", "objectTypeId": "0-1", "processingType": "MANUAL"}).expect(t, 400)

	var byName listResp
	a.do("GET", "/crm/v3/lists/object-type-id/0-1/name/Intent:%20hot%20accounts", nil).expect(t, 200).decode(t, &byName)
	if byName.List.ListID != created.List.ListID {
		t.Fatalf("by name = %+v", byName)
	}
	a.do("GET", "/crm/v3/lists/object-type-id/0-1/name/nope", nil).expect(t, 404)

	id := created.List.ListID
	var upd membershipsUpdate
	a.do("PUT", "/crm/v3/lists/"+id+"/memberships/add", []string{contacts[0], contacts[1], contacts[0], "999999"}).expect(t, 200).decode(t, &upd)
	if !slices.Equal(upd.RecordsIDsAdded, contacts) || !slices.Equal(upd.RecordIDsMissing, []string{"999999"}) {
		t.Fatalf("add = %+v", upd)
	}
	a.do("PUT", "/crm/v3/lists/"+id+"/memberships/remove", []string{contacts[0]}).expect(t, 200).decode(t, &upd)
	if !slices.Equal(upd.RecordIDsRemoved, contacts[:1]) {
		t.Fatalf("remove = %+v", upd)
	}
	var members struct {
		Results []struct {
			RecordID string `json:"recordId"`
		} `json:"results"`
		Total int `json:"total"`
	}
	a.do("GET", "/crm/v3/lists/"+id+"/memberships", nil).expect(t, 200).decode(t, &members)
	if members.Total != 1 || members.Results[0].RecordID != contacts[1] {
		t.Fatalf("members = %+v", members)
	}

	var dyn listResp
	a.do("POST", "/crm/v3/lists", map[string]any{"name": "Dynamic", "objectTypeId": "0-1", "processingType": "DYNAMIC",
		"filterBranch": map[string]any{"filterBranchType": "OR", "filterBranches": []any{}, "filters": []any{}}}).expect(t, 200).decode(t, &dyn)
	e := a.do("PUT", "/crm/v3/lists/"+dyn.List.ListID+"/memberships/add", []string{contacts[0]}).expect(t, 400).errorBody(t)
	if !strings.Contains(e.Message, "MANUAL or SNAPSHOT") {
		t.Fatalf("error = %+v", e)
	}
	// Date-versioned lists path.
	a.do("GET", "/crm/lists/2026-09/"+id, nil).expect(t, 200)
}

func TestAssociationsV4(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{DisableRateLimits: true})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	companies := p.SeedCompanies(props("name", "A"), props("name", "B"))
	contacts := p.SeedContacts(props("email", "a@x.com"), props("email", "b@x.com"))

	var pairs struct {
		Status  string          `json:"status"`
		Results []labelsBetween `json:"results"`
		Errors  []standardError `json:"errors"`
	}
	a.do("POST", "/crm/v4/associations/contacts/companies/batch/create", map[string]any{"inputs": []map[string]any{
		{"from": map[string]any{"id": contacts[0]}, "to": map[string]any{"id": companies[0]}, "types": []map[string]any{{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}}},
		{"from": map[string]any{"id": contacts[1]}, "to": map[string]any{"id": "999999"}, "types": []map[string]any{{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}}},
	}}).expect(t, http.StatusMultiStatus).decode(t, &pairs)
	if len(pairs.Results) != 1 || pairs.Results[0].FromObjectTypeID != "0-1" || pairs.Results[0].ToObjectTypeID != "0-2" || len(pairs.Errors) != 1 {
		t.Fatalf("batch create = %+v", pairs)
	}
	// Wrong type id for the pair.
	a.do("PUT", "/crm/v4/objects/contacts/"+contacts[0]+"/associations/companies/"+companies[1], []map[string]any{{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}}).expect(t, 400)
	// Labelled: make company B the primary one.
	var lb labelsBetween
	a.do("PUT", "/crm/v4/objects/contacts/"+contacts[0]+"/associations/companies/"+companies[1], []map[string]any{{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}}).expect(t, 201).decode(t, &lb)
	if !slices.Equal(lb.Labels, []string{"Primary"}) {
		t.Fatalf("labels = %+v", lb)
	}
	if c, _ := p.Object("contacts", contacts[0]); c["associatedcompanyid"] != companies[1] {
		t.Fatalf("primary company = %q, want %s", c["associatedcompanyid"], companies[1])
	}

	var list struct {
		Results []multiAssociated `json:"results"`
	}
	a.do("GET", "/crm/v4/objects/contacts/"+contacts[0]+"/associations/companies", nil).expect(t, 200).decode(t, &list)
	if len(list.Results) != 2 {
		t.Fatalf("associations = %+v", list)
	}
	for _, r := range list.Results {
		var typeIDs []int
		for _, at := range r.AssociationTypes {
			typeIDs = append(typeIDs, at.TypeID)
		}
		want := []int{279}
		if r.ToObjectID == companies[1] {
			want = []int{1, 279}
		}
		if !slices.Equal(typeIDs, want) {
			t.Fatalf("types to %s = %v, want %v", r.ToObjectID, typeIDs, want)
		}
	}

	var read struct {
		Results []struct {
			From objectID          `json:"from"`
			To   []multiAssociated `json:"to"`
		} `json:"results"`
		NumErrors int             `json:"numErrors"`
		Errors    []standardError `json:"errors"`
	}
	a.do("POST", "/crm/v4/associations/companies/contacts/batch/read", map[string]any{"inputs": []map[string]any{{"id": companies[0]}, {"id": companies[1]}, {"id": "123"}}}).expect(t, http.StatusMultiStatus).decode(t, &read)
	if len(read.Results) != 2 || read.NumErrors != 1 {
		t.Fatalf("batch read = %+v", read)
	}
	a.do("POST", "/crm/v4/associations/companies/contacts/batch/read", inputs(101, func(i int) map[string]any { return map[string]any{"id": fmt.Sprint(i + 1)} })).expect(t, 400)

	a.do("POST", "/crm/v4/associations/contacts/companies/batch/archive", map[string]any{"inputs": []map[string]any{{"from": map[string]any{"id": contacts[0]}, "to": []map[string]any{{"id": companies[0]}, {"id": companies[1]}}}}}).expect(t, 204)
	c, _ := p.Object("contacts", contacts[0])
	co, _ := p.Object("companies", companies[1])
	if c["associatedcompanyid"] != "" || co["num_associated_contacts"] != "0" {
		t.Fatalf("after archive: contact %v, company %v", c, co)
	}

	var labels struct {
		Results []assocSpecWithLabel `json:"results"`
	}
	a.do("GET", "/crm/v4/associations/deals/companies/labels", nil).expect(t, 200).decode(t, &labels)
	if len(labels.Results) != 2 || labels.Results[0].TypeID != 5 || labels.Results[1].TypeID != 341 {
		t.Fatalf("labels = %+v", labels)
	}
	// v3 reads list associations with their v3 type names.
	a.do("PUT", "/crm/v4/objects/contacts/"+contacts[1]+"/associations/default/companies/"+companies[0], nil).expect(t, 200)
	var withAssoc objectWire
	a.do("GET", "/crm/v3/objects/contacts/"+contacts[1]+"?associations=companies", nil).expect(t, 200).decode(t, &withAssoc)
	var types []string
	for _, r := range withAssoc.Associations["companies"].Results {
		types = append(types, r.Type)
	}
	if !slices.Equal(types, []string{"contact_to_company", "contact_to_company_unlabeled"}) {
		t.Fatalf("v3 association types = %v", types)
	}
}

func TestPropertiesAPI(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{DisableRateLimits: true})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)

	var group propertyGroup
	a.do("POST", "/crm/v3/properties/companies/groups", map[string]any{"name": "intent_data", "label": "Intent data"}).expect(t, 201).decode(t, &group)
	if group.Name != "intent_data" {
		t.Fatalf("group = %+v", group)
	}
	a.do("POST", "/crm/v3/properties/companies/groups", map[string]any{"name": "intent_data", "label": "Again"}).expect(t, http.StatusConflict)

	var batch struct {
		Results []propertyWire  `json:"results"`
		Errors  []standardError `json:"errors"`
	}
	a.do("POST", "/crm/v3/properties/companies/batch/create", map[string]any{"inputs": []map[string]any{
		{"name": "intent_score", "label": "Intent score", "type": "number", "fieldType": "number", "groupName": "intent_data"},
		{"name": "intent_tier", "label": "Intent tier", "type": "enumeration", "fieldType": "select", "groupName": "intent_data",
			"options": []map[string]any{{"label": "Hot", "value": "hot", "hidden": false}, {"label": "Cold", "value": "cold", "hidden": false}}},
		{"name": "Bad Name", "label": "x", "type": "string", "fieldType": "text", "groupName": "intent_data"},
		{"name": "no_group", "label": "x", "type": "string", "fieldType": "text", "groupName": "missing"},
	}}).expect(t, http.StatusMultiStatus).decode(t, &batch)
	if len(batch.Results) != 2 || len(batch.Errors) != 2 {
		t.Fatalf("batch create = %+v", batch)
	}
	a.do("POST", "/crm/v3/properties/companies", map[string]any{"name": "intent_score", "label": "dup", "type": "number", "fieldType": "number", "groupName": "intent_data"}).expect(t, http.StatusConflict)
	a.do("POST", "/crm/v3/properties/companies", map[string]any{"name": "x1", "label": "x", "type": "number", "fieldType": "select", "groupName": "intent_data"}).expect(t, 400)
	a.do("POST", "/crm/v3/properties/companies", map[string]any{"name": "x2", "label": "x", "type": "enumeration", "fieldType": "select", "groupName": "intent_data"}).expect(t, 400)

	// The new properties are writable and validated.
	a.do("POST", "/crm/v3/objects/companies", map[string]any{"properties": props("intent_score", "91", "intent_tier", "hot")}).expect(t, 201)
	a.do("POST", "/crm/v3/objects/companies", map[string]any{"properties": props("intent_tier", "lukewarm")}).expect(t, 400)

	var prop propertyWire
	a.do("GET", "/crm/v3/properties/companies/intent_tier", nil).expect(t, 200).decode(t, &prop)
	if prop.Type != "enumeration" || len(prop.Options) != 2 || prop.HubspotDefined {
		t.Fatalf("property = %+v", prop)
	}
	a.do("GET", "/crm/v3/properties/companies/domain", nil).expect(t, 200).decode(t, &prop)
	if !prop.HubspotDefined || prop.ModificationMetadata.ReadOnlyValue {
		t.Fatalf("domain = %+v", prop)
	}
	var all struct {
		Results []propertyWire `json:"results"`
	}
	a.do("GET", "/crm/v3/properties/contacts", nil).expect(t, 200).decode(t, &all)
	var names []string
	for _, r := range all.Results {
		names = append(names, r.Name)
	}
	for _, want := range []string{"email", "firstname", "lastname", "hs_additional_emails", "associatedcompanyid", "lastmodifieddate", "hubspot_owner_id"} {
		if !slices.Contains(names, want) {
			t.Fatalf("contact properties lack %s: %v", want, names)
		}
	}
	a.do("DELETE", "/crm/v3/properties/companies/domain", nil).expect(t, 400)
	a.do("DELETE", "/crm/v3/properties/companies/intent_score", nil).expect(t, 204)
	a.do("POST", "/crm/v3/objects/companies", map[string]any{"properties": props("intent_score", "1")}).expect(t, 400)
}

func TestOwners(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{DisableRateLimits: true})
	p := s.AddPortal(PortalOptions{Owners: []Owner{
		{ID: "11", Email: "ana@corp.com", FirstName: "Ana", UserID: 1},
		{ID: "12", Email: "bo@corp.com", FirstName: "Bo", UserID: 2},
		{ID: "13", Email: "cy@corp.com", FirstName: "Cy", UserID: 3, Archived: true},
	}})
	a := newAPI(t, s, p)
	var page struct {
		Results []ownerWire `json:"results"`
		Paging  *paging     `json:"paging"`
	}
	a.do("GET", "/crm/v3/owners?limit=1", nil).expect(t, 200).decode(t, &page)
	if len(page.Results) != 1 || page.Results[0].ID != "11" || page.Paging == nil {
		t.Fatalf("page 1 = %+v", page)
	}
	after := page.Paging.Next.After
	page.Paging = nil
	a.do("GET", "/crm/v3/owners/?limit=1&after="+after, nil).expect(t, 200).decode(t, &page)
	if len(page.Results) != 1 || page.Results[0].ID != "12" || page.Paging != nil {
		t.Fatalf("page 2 = %+v", page)
	}
	a.do("GET", "/crm/v3/owners?email=BO@corp.com", nil).expect(t, 200).decode(t, &page)
	if len(page.Results) != 1 || page.Results[0].ID != "12" {
		t.Fatalf("by email = %+v", page)
	}
	var o ownerWire
	a.do("GET", "/crm/v3/owners/11", nil).expect(t, 200).decode(t, &o)
	if o.Email != "ana@corp.com" || o.Type != "PERSON" {
		t.Fatalf("owner = %+v", o)
	}
	a.do("GET", "/crm/v3/owners/13", nil).expect(t, 404)
	a.do("GET", "/crm/v3/owners/13?archived=true", nil).expect(t, 200)
	// Owners are valid hubspot_owner_id values.
	a.do("POST", "/crm/v3/objects/companies", map[string]any{"properties": props("hubspot_owner_id", "12")}).expect(t, 201)
	a.do("POST", "/crm/v3/objects/companies", map[string]any{"properties": props("hubspot_owner_id", "13")}).expect(t, 400)
}

func TestMerge(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	s := NewTest(t, fastWebhooks())
	p := s.AddPortal(PortalOptions{})
	appID := s.AddApp(App{ClientSecret: "k", TargetURL: rc.URL})
	subscribe(t, s, appID, "contact.merge", "")
	a := newAPI(t, s, p)
	company := p.SeedCompanies(props("name", "Acme"))[0]
	ids := p.SeedContacts(props("email", "ana@acme.com"), props("email", "ana.old@acme.com", "jobtitle", "CTO"))
	if err := p.Associate("contacts", ids[1], "companies", company); err != nil {
		t.Fatal(err)
	}
	var merged objectWire
	a.do("POST", "/crm/v3/objects/contacts/merge", map[string]any{"primaryObjectId": ids[0], "objectIdToMerge": ids[1]}).expect(t, 200).decode(t, &merged)
	got, _ := p.Object("contacts", ids[0])
	if got["jobtitle"] != "CTO" || got["hs_additional_emails"] != "ana.old@acme.com" || got["associatedcompanyid"] != company {
		t.Fatalf("merged = %v", got)
	}
	if _, ok := p.Object("contacts", ids[1]); ok {
		t.Fatal("the merged contact is still live")
	}
	eventually(t, "the merge event", func() bool { return len(rc.events()) == 1 })
	ev := rc.events()[0]
	if ev.SubscriptionType != "contact.merge" || fmt.Sprint(ev.PrimaryObjectID) != ids[0] || len(ev.MergedObjectIDs) != 1 || fmt.Sprint(ev.MergedObjectIDs[0]) != ids[1] {
		t.Fatalf("merge event = %+v", ev)
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	p := s.AddPortal(PortalOptions{})
	res := p.Generate(GenerateOptions{Companies: 200, ContactsPerCompany: 2, DealsPerCompany: 1, AliasRate: 0.3, DuplicateDomainRate: 0.1, WebsiteOnlyRate: 0.1, Seed: 42})
	if len(res.Companies) != 200 || len(res.Contacts) != 400 || len(res.Deals) != 200 || p.Count("companies") != 200 {
		t.Fatalf("generated %d/%d/%d", len(res.Companies), len(res.Contacts), len(res.Deals))
	}
	domains := map[string]int{}
	var aliases, websiteOnly int
	modified := map[string]bool{}
	for _, id := range res.Companies {
		c, _ := p.Object("companies", id)
		if c["name"] == "" || c["website"] == "" {
			t.Fatalf("company %s = %v", id, c)
		}
		if c["domain"] == "" {
			websiteOnly++
		} else {
			domains[c["domain"]]++
		}
		if c["hs_additional_domains"] != "" {
			aliases++
		}
		if c["num_associated_contacts"] != "2" || c["num_associated_deals"] != "1" {
			t.Fatalf("company %s counts = %v", id, c)
		}
		modified[c["hs_lastmodifieddate"]] = true
	}
	dups := 0
	for _, n := range domains {
		if n > 1 {
			dups++
		}
	}
	if aliases == 0 || websiteOnly == 0 || dups == 0 {
		t.Fatalf("aliases %d, website-only %d, duplicate domains %d: want some of each", aliases, websiteOnly, dups)
	}
	if len(modified) < 150 {
		t.Fatalf("only %d distinct modified dates; want them spread", len(modified))
	}
	for _, id := range res.Contacts {
		c, _ := p.Object("contacts", id)
		if !strings.Contains(c["email"], "@") || c["associatedcompanyid"] == "" {
			t.Fatalf("contact %s = %v", id, c)
		}
	}
	// The same seed gives the same data.
	q := s.AddPortal(PortalOptions{})
	res2 := q.Generate(GenerateOptions{Companies: 5, Seed: 42})
	first, _ := p.Object("companies", res.Companies[0])
	again, _ := q.Object("companies", res2.Companies[0])
	if first["name"] != again["name"] || first["domain"] != again["domain"] {
		t.Fatalf("seeded generation differs: %v vs %v", first["name"], again["name"])
	}
}

func TestFixtures(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	p := s.AddPortal(PortalOptions{})
	f, err := LoadFixtures(strings.NewReader(`{
		"companies": [{"ref": "acme", "properties": {"name": "Acme", "domain": "acme.com"}}],
		"contacts":  [{"ref": "ana", "properties": {"email": "ana@acme.com"}, "associations": ["acme"]}],
		"deals":     [{"properties": {"dealname": "Renewal", "dealstage": "qualifiedtobuy", "pipeline": "default"}, "associations": ["acme", "ana"]}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	refs, err := p.ApplyFixtures(f)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := p.Object("companies", refs["acme"])
	if c["num_associated_contacts"] != "1" || c["num_associated_deals"] != "1" {
		t.Fatalf("company = %v", c)
	}
	if _, err := p.ApplyFixtures(Fixtures{Contacts: []FixtureRecord{{Associations: []string{"ghost"}}}}); err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("unknown ref error = %v", err)
	}
	if _, err := LoadFixtures(strings.NewReader(`{"compnies": []}`)); err == nil {
		t.Fatal("a misspelt key was accepted")
	}
}
