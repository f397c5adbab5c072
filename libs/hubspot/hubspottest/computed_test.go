package hubspottest

import (
	"fmt"
	"testing"
	"time"
)

func TestComputedAssociationCounts(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := NewTest(t, Options{Clock: clock.Now, DisableRateLimits: true})
	p := s.AddPortal(PortalOptions{})
	a := newAPI(t, s, p)
	company := p.SeedCompanies(props("name", "Acme"))[0]
	before, _ := p.Object("companies", company)

	clock.Advance(time.Minute)
	var contact objectWire
	a.do("POST", "/crm/v3/objects/contacts", map[string]any{
		"properties":   props("email", "ana@acme.com"),
		"associations": []map[string]any{{"to": map[string]any{"id": company}, "types": []map[string]any{{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}}}},
	}).expect(t, 201).decode(t, &contact)
	var deal objectWire
	a.do("POST", "/crm/v3/objects/deals", map[string]any{"properties": props("dealname", "Renewal", "dealstage", "qualifiedtobuy", "pipeline", "default")}).expect(t, 201).decode(t, &deal)
	a.do("PUT", "/crm/v4/objects/deals/"+deal.ID+"/associations/default/companies/"+company, nil).expect(t, 200)
	a.do("PUT", "/crm/v4/objects/contacts/"+contact.ID+"/associations/default/deals/"+deal.ID, nil).expect(t, 200)

	c, _ := p.Object("companies", company)
	if c["num_associated_contacts"] != "1" || c["num_associated_deals"] != "1" {
		t.Fatalf("company counts = %v", c)
	}
	if c["hs_lastmodifieddate"] == before["hs_lastmodifieddate"] {
		t.Fatalf("association changes did not move hs_lastmodifieddate")
	}
	ct, _ := p.Object("contacts", contact.ID)
	if ct["associatedcompanyid"] != company || ct["num_associated_deals"] != "1" {
		t.Fatalf("contact = %v; the first company becomes the primary one", ct)
	}
	d, _ := p.Object("deals", deal.ID)
	if d["num_associated_contacts"] != "1" {
		t.Fatalf("deal = %v", d)
	}

	// Deleting the contact updates the company's count.
	a.do("DELETE", "/crm/v3/objects/contacts/"+contact.ID, nil).expect(t, 204)
	c, _ = p.Object("companies", company)
	if c["num_associated_contacts"] != "0" {
		t.Fatalf("after delete: %v", c)
	}
}

func TestUIEditAndBulkEdit(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := NewTest(t, Options{Clock: clock.Now})
	p := s.AddPortal(PortalOptions{})
	var seed []map[string]string
	for i := range 300 {
		seed = append(seed, props("name", fmt.Sprint("c", i), "industry", "RETAIL"))
	}
	ids := p.SeedCompanies(seed...)

	clock.Advance(time.Hour)
	if err := p.UIEdit("companies", ids[0], props("name", "Edited")); err != nil {
		t.Fatal(err)
	}
	got, _ := p.Object("companies", ids[0])
	if got["name"] != "Edited" || got["hs_lastmodifieddate"] != formatTime(clock.Now()) {
		t.Fatalf("UI edit = %v", got)
	}
	if err := p.UIEdit("companies", ids[0], props("industry", "NOT_AN_OPTION")); err == nil {
		t.Fatal("UIEdit accepted an invalid option")
	}

	clock.Advance(time.Millisecond)
	if err := p.BulkEdit("companies", ids, props("industry", "BANKING")); err != nil {
		t.Fatal(err)
	}
	stamp := formatTime(clock.Now())
	for _, id := range ids {
		o, _ := p.Object("companies", id)
		if o["industry"] != "BANKING" || o["hs_lastmodifieddate"] != stamp {
			t.Fatalf("record %s after bulk edit = %v, want one shared stamp %s", id, o, stamp)
		}
	}
	// All 300 share one timestamp, so a search on it returns them all.
	a := newAPI(t, s, p)
	var page searchPage
	a.do("POST", "/crm/v3/objects/companies/search", map[string]any{
		"filterGroups": []map[string]any{{"filters": []map[string]any{{"propertyName": "hs_lastmodifieddate", "operator": "EQ", "value": fmt.Sprint(clock.Now().UnixMilli())}}}},
		"limit":        1,
	}).expect(t, 200).decode(t, &page)
	if page.Total != 300 {
		t.Fatalf("search by the shared stamp: total %d, want 300", page.Total)
	}
	if err := p.BulkEdit("companies", []string{ids[0], "999999"}, props("name", "x")); err == nil {
		t.Fatal("BulkEdit accepted an unknown id")
	}
}
