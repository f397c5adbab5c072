package hubspot_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
)

func TestProperties(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, nil)
	ctx := testCtx(t)

	g, err := c.CreateGroup(ctx, hubspot.Companies, hubspot.PropertyGroup{Name: "intent_data", Label: "Intent data"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "intent_data" {
		t.Fatalf("group = %+v", g)
	}
	if got, err := c.GetGroup(ctx, hubspot.Companies, "intent_data"); err != nil || got.Label != "Intent data" {
		t.Fatalf("GetGroup = %+v, %v", got, err)
	}
	if _, err := c.GetGroup(ctx, hubspot.Companies, "nope"); !hubspot.IsNotFound(err) {
		t.Fatalf("missing group: %v", err)
	}
	score := hubspot.PropertyCreate{Name: "intent_score", Label: "Intent score", Type: hubspot.TypeNumber, FieldType: hubspot.FieldNumber, GroupName: "intent_data"}
	prop, err := c.CreateProperty(ctx, hubspot.Companies, score)
	if err != nil {
		t.Fatal(err)
	}
	if prop.Name != "intent_score" || prop.Type != "number" || prop.GroupName != "intent_data" {
		t.Fatalf("property = %+v", prop)
	}
	if _, err := c.CreateProperty(ctx, hubspot.Companies, score); !hubspot.IsConflict(err) {
		t.Fatalf("duplicate property: %v, want a conflict", err)
	}
	if _, err := c.CreateProperty(ctx, hubspot.Companies, hubspot.PropertyCreate{Name: "x", Label: "X", Type: "enumeration", FieldType: "select", GroupName: "intent_data"}); err == nil ||
		!strings.Contains(err.Error(), "enumeration without options") {
		t.Fatalf("enumeration without options: %v", err)
	}

	res, err := c.BatchCreateProperties(ctx, hubspot.Companies, []hubspot.PropertyCreate{
		{Name: "intent_tier", Label: "Intent tier", Type: hubspot.TypeEnumeration, FieldType: hubspot.FieldSelect, GroupName: "intent_data",
			Options: []hubspot.OptionInput{{Label: "Hot", Value: "hot"}, {Label: "Cold", Value: "cold", DisplayOrder: 1}}},
		{Name: "intent_orphan", Label: "Orphan", Type: hubspot.TypeString, FieldType: hubspot.FieldText, GroupName: "no_such_group"},
		{Name: "intent_key", Label: "Intent key", Type: hubspot.TypeString, FieldType: hubspot.FieldText, GroupName: "intent_data", HasUniqueValue: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 2 || len(res.Errors) != 1 || res.Errors[0].Index != 1 {
		t.Fatalf("batch create properties = %+v", res)
	}
	all, err := c.GetProperties(ctx, hubspot.Companies)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]hubspot.Property{}
	for _, p := range all {
		names[p.Name] = p
	}
	if tier := names["intent_tier"]; len(tier.Options) != 2 || !names["intent_key"].HasUniqueValue || names["domain"].Name == "" {
		t.Fatalf("GetProperties misses the created properties: %v", slices.Collect(func(yield func(string) bool) {
			for n := range names {
				yield(n)
			}
		}))
	}
	// The new enumeration is enforced on writes.
	ids := p.SeedCompanies(map[string]string{"name": "Acme"})
	if _, err := c.Update(ctx, hubspot.Companies, ids[0], "", map[string]string{"intent_tier": "lukewarm"}); !hubspot.IsValidation(err) {
		t.Fatalf("bad option: %v", err)
	}
	if _, err := c.Update(ctx, hubspot.Companies, ids[0], "", map[string]string{"intent_tier": "hot", "intent_score": "87"}); err != nil {
		t.Fatal(err)
	}
}

func TestOwners(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, nil)
	ctx := testCtx(t)
	owners := p.Owners()

	var got []string
	for o, err := range c.AllOwners(ctx, hubspot.OwnerListOptions{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, o.ID)
	}
	if len(got) != len(owners) {
		t.Fatalf("AllOwners = %v, want %d owners", got, len(owners))
	}
	o, err := c.OwnerByEmail(ctx, strings.ToUpper(owners[1].Email))
	if err != nil || o.ID != owners[1].ID {
		t.Fatalf("OwnerByEmail = %+v, %v", o, err)
	}
	_, err = c.OwnerByEmail(ctx, "nobody@example.com")
	if !errors.Is(err, hubspot.ErrNotFound) || !hubspot.IsNotFound(err) {
		t.Fatalf("unknown owner: %v", err)
	}
	if one, err := c.GetOwner(ctx, owners[0].ID); err != nil || one.Email != owners[0].Email {
		t.Fatalf("GetOwner = %+v, %v", one, err)
	}
}

func TestLists(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, nil)
	ctx := testCtx(t)
	ids := p.SeedContacts(map[string]string{"email": "a@x.com"}, map[string]string{"email": "b@x.com"}, map[string]string{"email": "c@x.com"})

	l, err := c.CreateList(ctx, hubspot.CreateListRequest{Name: "hot accounts", ObjectTypeID: hubspot.Contacts.TypeID()})
	if err != nil {
		t.Fatal(err)
	}
	if l.ProcessingType != hubspot.ListManual || l.ListID == "" {
		t.Fatalf("list = %+v", l)
	}
	found, err := c.ListByName(ctx, hubspot.Contacts.TypeID(), "hot accounts")
	if err != nil || found.ListID != l.ListID {
		t.Fatalf("ListByName = %+v, %v", found, err)
	}
	if _, err := c.ListByName(ctx, hubspot.Contacts.TypeID(), "cold accounts"); !hubspot.IsNotFound(err) {
		t.Fatalf("missing list: %v", err)
	}
	if _, err := c.CreateList(ctx, hubspot.CreateListRequest{Name: "hot accounts", ObjectTypeID: "0-1"}); err == nil {
		t.Fatal("duplicate list name accepted")
	}

	up, err := c.AddMembers(ctx, l.ListID, []string{ids[0], ids[1], "99999999"})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(up.Added)
	if !slices.Equal(up.Added, []string{ids[0], ids[1]}) || !slices.Equal(up.Missing, []string{"99999999"}) {
		t.Fatalf("AddMembers = %+v", up)
	}
	rm, err := c.RemoveMembers(ctx, l.ListID, []string{ids[0]})
	if err != nil || !slices.Equal(rm.Removed, []string{ids[0]}) {
		t.Fatalf("RemoveMembers = %+v, %v", rm, err)
	}
	members, err := c.ListMembers(ctx, l.ListID, "", 0)
	if err != nil || len(members.Results) != 1 || members.Results[0].RecordID != ids[1] {
		t.Fatalf("ListMembers = %+v, %v", members, err)
	}
	if _, err := c.AddMembers(ctx, l.ListID, []string{"abc"}); err == nil || !strings.Contains(err.Error(), "recordIds[0]") {
		t.Fatalf("non-numeric id: %v", err)
	}

	if _, err := c.CreateList(ctx, hubspot.CreateListRequest{Name: "dynamic", ObjectTypeID: "0-1", ProcessingType: hubspot.ListDynamic}); err == nil {
		t.Fatal("DYNAMIC list without filterBranch accepted")
	}
	dyn, err := c.CreateList(ctx, hubspot.CreateListRequest{Name: "dynamic", ObjectTypeID: "0-1", ProcessingType: hubspot.ListDynamic,
		FilterBranch: []byte(`{"filterBranchType":"OR","filterBranches":[{"filterBranchType":"AND","filters":[{"filterType":"PROPERTY","property":"email","operation":{"operationType":"STRING","operator":"CONTAINS","value":"@x.com"}}]}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddMembers(ctx, dyn.ListID, []string{ids[2]}); !hubspot.IsValidation(err) {
		t.Fatalf("adding to a DYNAMIC list: %v, want a validation error", err)
	}
}

func TestAssociations(t *testing.T) {
	t.Parallel()
	srv, p := sandbox(t, hubspottest.Options{}, hubspottest.PortalOptions{})
	c := newClient(t, srv, p, nil)
	ctx := testCtx(t)
	cos := p.SeedCompanies(map[string]string{"name": "A"}, map[string]string{"name": "B"})
	cts := p.SeedContacts(map[string]string{"email": "1@x.com"}, map[string]string{"email": "2@x.com"}, map[string]string{"email": "3@x.com"})

	if err := c.AssociateDefault(ctx, hubspot.Contacts, cts[0], hubspot.Companies, cos[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.Associate(ctx, hubspot.Contacts, cts[1], hubspot.Companies, cos[0], hubspot.Defined(hubspot.AssocContactToCompanyPrimary)); err != nil {
		t.Fatal(err)
	}
	page, err := c.ReadAssociations(ctx, hubspot.Companies, cos[0], hubspot.Contacts, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var to []string
	for _, a := range page.Results {
		to = append(to, a.ToObjectID)
		if len(a.Types) == 0 {
			t.Errorf("association to %s has no types", a.ToObjectID)
		}
	}
	slices.Sort(to)
	if !slices.Equal(to, []string{cts[0], cts[1]}) {
		t.Fatalf("company %s associated to %v, want %v", cos[0], to, cts[:2])
	}
	if props, _ := p.Object("companies", cos[0]); props["num_associated_contacts"] != "2" {
		t.Errorf("num_associated_contacts = %q, want 2", props["num_associated_contacts"])
	}

	res, err := c.BatchAssociate(ctx, hubspot.Contacts, hubspot.Companies, []hubspot.AssociationInput{
		{FromID: cts[2], ToID: cos[1], Types: []hubspot.AssociationSpec{hubspot.Defined(hubspot.AssocContactToCompany)}},
		{FromID: "987654321", ToID: cos[1], Types: []hubspot.AssociationSpec{hubspot.Defined(hubspot.AssocContactToCompany)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 1 || res.Errors[0].Index != 1 {
		t.Fatalf("BatchAssociate errors = %+v", res.Errors)
	}
	if _, err := c.BatchAssociate(ctx, hubspot.Contacts, hubspot.Companies, []hubspot.AssociationInput{{FromID: cts[2], ToID: cos[1]}}); err == nil {
		t.Fatal("labelled batch without types accepted")
	}
	if _, err := c.BatchAssociateDefault(ctx, hubspot.Contacts, hubspot.Companies, []hubspot.AssociationInput{{FromID: cts[2], ToID: cos[0]}}); err != nil {
		t.Fatal(err)
	}
	read, err := c.BatchReadAssociations(ctx, hubspot.Contacts, hubspot.Companies, []string{cts[2], cts[0]})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range read.Results {
		got[r.From.ID] = len(r.To)
	}
	if got[cts[2]] != 2 || got[cts[0]] != 1 {
		t.Fatalf("BatchReadAssociations = %v", got)
	}
	if err := c.BatchArchiveAssociations(ctx, hubspot.Contacts, hubspot.Companies, []hubspot.AssociationArchiveInput{{FromID: cts[2], ToIDs: []string{cos[0], cos[1]}}}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range c.AllAssociations(ctx, hubspot.Contacts, cts[2], hubspot.Companies) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 0 {
		t.Fatalf("%d associations left after BatchArchiveAssociations", n)
	}
	if err := c.RemoveAssociation(ctx, hubspot.Contacts, cts[0], hubspot.Companies, cos[0]); err != nil {
		t.Fatal(err)
	}
	if page, err := c.ReadAssociations(ctx, hubspot.Contacts, cts[0], hubspot.Companies, "", 0); err != nil || len(page.Results) != 0 {
		t.Fatalf("after RemoveAssociation: %+v, %v", page, err)
	}
}

// oneShotReader hides the Seeker of the reader it wraps.
type oneShotReader struct{ r io.Reader }

func (o oneShotReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestImports(t *testing.T) {
	t.Parallel()
	// A short rate-limit interval keeps the 429 retry (which waits out the
	// window) quick.
	srv, p := sandbox(t, hubspottest.Options{ImportDelay: 5 * time.Millisecond}, hubspottest.PortalOptions{Interval: 200 * time.Millisecond})
	c := newClient(t, srv, p, nil)
	ctx := testCtx(t)
	ids := p.SeedCompanies(map[string]string{"name": "A", "domain": "a.example"}, map[string]string{"name": "B", "domain": "b.example"})

	byID := func(data io.Reader) hubspot.ImportRequest {
		return hubspot.ImportRequest{
			Name:       "intent-update",
			Operations: map[string]string{hubspot.Companies.TypeID(): hubspot.ImportUpdate},
			DateFormat: "YEAR_MONTH_DAY",
			Files: []hubspot.ImportFile{{
				FileName: "companies.csv",
				Data:     data,
				Page: hubspot.ImportPage{HasHeader: true, ColumnMappings: []hubspot.ColumnMapping{
					{ColumnObjectTypeID: "0-2", ColumnName: "Record ID", PropertyName: "hs_object_id", IDColumnType: hubspot.IDObjectID},
					{ColumnObjectTypeID: "0-2", ColumnName: "City", PropertyName: "city"},
				}},
			}},
		}
	}
	csv := "Record ID,City\n" + ids[0] + ",Madrid\n" + ids[1] + ",Lisbon\n77777777,Nowhere\n"

	// A 429 on the upload is retried: the seekable file is sent again.
	p.Faults(hubspottest.Faults{Next429: 1, PathPrefix: "/crm/v3/imports"})
	imp, err := c.StartImport(ctx, byID(strings.NewReader(csv)))
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.WaitImport(ctx, imp.ID, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != hubspot.ImportDone {
		t.Fatalf("import state %s, want DONE (%+v)", done.State, done)
	}
	if props, _ := p.Object("companies", ids[1]); props["city"] != "Lisbon" {
		t.Fatalf("company %s city %q after import", ids[1], props["city"])
	}
	var rowErrs []hubspot.ImportError
	for e, err := range c.AllImportErrors(ctx, imp.ID) {
		if err != nil {
			t.Fatal(err)
		}
		rowErrs = append(rowErrs, e)
	}
	if len(rowErrs) != 1 || rowErrs[0].ErrorType == "" || rowErrs[0].SourceData.LineNumber == 0 {
		t.Fatalf("import errors = %+v", rowErrs)
	}

	// A reader that cannot rewind is sent once; the 429 comes back.
	p.Faults(hubspottest.Faults{Next429: 1, PathPrefix: "/crm/v3/imports"})
	if _, err := c.StartImport(ctx, byID(oneShotReader{strings.NewReader(csv)})); err == nil || !strings.Contains(err.Error(), "io.Seeker") {
		t.Fatalf("non-seekable retry: %v", err)
	}

	// Upsert contacts by email (alternate id).
	up := hubspot.ImportRequest{
		Name:       "contacts",
		Operations: map[string]string{"0-1": hubspot.ImportUpsert},
		Files: []hubspot.ImportFile{{FileName: "contacts.csv", Data: strings.NewReader("Email,First\nnew@x.com,New\n"),
			Page: hubspot.ImportPage{HasHeader: true, ColumnMappings: []hubspot.ColumnMapping{
				{ColumnObjectTypeID: "0-1", ColumnName: "Email", PropertyName: "email", IDColumnType: hubspot.IDAlternateID},
				{ColumnObjectTypeID: "0-1", ColumnName: "First", PropertyName: "firstname"},
			}}}},
	}
	imp2, err := c.StartImport(ctx, up)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := c.WaitImport(ctx, imp2.ID, 10*time.Millisecond); err != nil || done.State != hubspot.ImportDone {
		t.Fatalf("contacts import: %+v, %v", done, err)
	}
	if p.Count("contacts") != 1 {
		t.Fatalf("%d contacts after the upsert import, want 1", p.Count("contacts"))
	}

	// Client-side validation.
	bad := byID(strings.NewReader(csv))
	bad.Files[0].Page.ColumnMappings = bad.Files[0].Page.ColumnMappings[1:] // no id column for UPDATE
	if _, err := c.StartImport(ctx, bad); err == nil || !strings.Contains(err.Error(), "UPDATE") {
		t.Fatalf("UPDATE without id column: %v", err)
	}
}
