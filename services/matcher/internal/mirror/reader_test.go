package mirror_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/redisx/redistest"
	"github.com/signalbridge/signalbridge/services/matcher/internal/match"
	"github.com/signalbridge/signalbridge/services/matcher/internal/mirror"
	"github.com/signalbridge/signalbridge/services/matcher/internal/testenv"
)

// fixture is a sandbox portal and a mirror reader for it.
type fixture struct {
	hs     *testenv.HubSpot
	sb     *hubspottest.Portal
	hc     *hubspot.Client
	rdb    *redis.Client
	store  *mirror.Store
	reader *mirror.Reader
	portal string
	clock  *testenv.Clock
}

func newFixture(t *testing.T, lag time.Duration) *fixture {
	t.Helper()
	clock := testenv.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	rdb := redistest.TestClient(t)
	id := testenv.PortalID(t, rdb)
	hs := testenv.NewHubSpot(t, hubspottest.Options{Clock: clock.Now, SearchIndexLag: lag})
	sb := hs.AddPortal(t, id)
	portal := strconv.FormatInt(id, 10)
	store := mirror.NewStore(rdb, time.Hour)
	return &fixture{
		hs: hs, sb: sb, hc: hs.MustClient(t, portal), rdb: rdb, store: store, portal: portal, clock: clock,
		reader: mirror.NewReader(store, mirror.ReaderOptions{IndexLag: lag + time.Minute, BatchSize: 400, Now: clock.Now}),
	}
}

func (f *fixture) full(t *testing.T, obj mirror.Object) mirror.Run {
	t.Helper()
	run, err := f.reader.Full(context.Background(), f.portal, f.hc, obj)
	if err != nil {
		t.Fatalf("full read of %s: %v", obj, err)
	}
	return run
}

func (f *fixture) incremental(t *testing.T, obj mirror.Object) mirror.Run {
	t.Helper()
	run, err := f.reader.Incremental(context.Background(), f.portal, f.hc, obj)
	if err != nil {
		t.Fatalf("incremental read of %s: %v", obj, err)
	}
	return run
}

func (f *fixture) lookup(t *testing.T, domains ...string) []mirror.DomainResult {
	t.Helper()
	_, res := lookupDomains(t, f.store, f.portal, domains...)
	return res
}

// checkCompaniesMirrored asserts that every live sandbox company is in the mirror under
// every index entry its current properties give, with its current modified date.
func (f *fixture) checkCompaniesMirrored(t *testing.T) {
	t.Helper()
	ids := f.sb.IDs(hubspottest.Companies)
	n, err := f.store.Count(context.Background(), f.portal, mirror.Companies)
	if err != nil || int(n) != len(ids) {
		t.Fatalf("mirror holds %d companies (%v), sandbox %d", n, err, len(ids))
	}
	type want struct{ id, prop string }
	byDomain := map[string][]want{}
	for _, id := range ids {
		p, _ := f.sb.Object(hubspottest.Companies, id)
		for _, e := range match.CompanyEntries(p["domain"], p["website"], p["hs_additional_domains"]) {
			byDomain[e.Key] = append(byDomain[e.Key], want{id, e.Property})
		}
	}
	domains := make([]string, 0, len(byDomain))
	for d := range byDomain {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	for start := 0; start < len(domains); start += 500 {
		part := domains[start:min(start+500, len(domains))]
		res := f.lookup(t, part...)
		for i, d := range part {
			got := map[string]string{}
			for _, h := range res[i].Hits {
				got[h.Company.ID] = h.Property
			}
			if len(got) != len(byDomain[d]) {
				t.Fatalf("domain %s: mirror has %v, want %v", d, got, byDomain[d])
			}
			for _, w := range byDomain[d] {
				if got[w.id] != w.prop {
					t.Fatalf("domain %s: company %s under %q, want %q", d, w.id, got[w.id], w.prop)
				}
			}
		}
	}
}

func TestFullReadMirrorsCompaniesContactsAndDeals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	f.sb.Generate(hubspottest.GenerateOptions{
		Companies: 600, ContactsPerCompany: 2, DealsPerCompany: 2,
		AliasRate: 0.4, DuplicateDomainRate: 0.15, WebsiteOnlyRate: 0.15, Seed: 7,
	})
	for _, obj := range mirror.Objects {
		run := f.full(t, obj)
		if run.Error != "" || run.Records != f.sb.Count(string(obj)) || run.Written != run.Records {
			t.Fatalf("%s run = %+v, sandbox has %d", obj, run, f.sb.Count(string(obj)))
		}
		if run.Cursor == "" || run.Calls < run.Records/100 {
			t.Errorf("%s run = %+v: no cursor, or fewer list calls than pages", obj, run)
		}
	}
	f.checkCompaniesMirrored(t)

	// Every contact email finds its contact, with its primary company.
	ctx := context.Background()
	ids := f.sb.IDs(hubspottest.Contacts)
	var emails []string
	for _, id := range ids {
		p, _ := f.sb.Object(hubspottest.Contacts, id)
		emails = append(emails, p["email"])
	}
	lk := mirror.LookupEmails(emails)
	if err := f.store.Run(ctx, f.portal, lk); err != nil {
		t.Fatal(err)
	}
	_, res, err := lk.Emails()
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		p, _ := f.sb.Object(hubspottest.Contacts, id)
		r := match.ResolveContact(emails[i], res[i].Hits)
		if !r.Matched() || r.Contact.ID != id || r.Contact.CompanyID != p["associatedcompanyid"] || r.Contact.CompanyID == "" {
			t.Fatalf("contact %s (%s): got %+v, want company %s", id, emails[i], r.Contact, p["associatedcompanyid"])
		}
	}

	// Open deals per company match the sandbox's deals and associations.
	wantOpen := map[string]int{}
	for _, id := range f.sb.IDs(hubspottest.Deals) {
		p, _ := f.sb.Object(hubspottest.Deals, id)
		if p["hs_is_closed"] == "true" {
			continue
		}
		res, err := f.hc.BatchReadAssociations(ctx, hubspot.Deals, hubspot.Companies, []string{id})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range res.Results {
			for _, to := range a.To {
				wantOpen[to.ToObjectID]++
			}
		}
	}
	companies, err := f.store.Companies(ctx, f.portal, f.sb.IDs(hubspottest.Companies))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for id, c := range companies {
		if c.OpenDeals != wantOpen[id] {
			t.Fatalf("company %s: %d open deals, want %d", id, c.OpenDeals, wantOpen[id])
		}
		p, _ := f.sb.Object(hubspottest.Companies, id)
		if strconv.Itoa(c.NumDeals) != p["num_associated_deals"] || strconv.Itoa(c.NumContacts) != p["num_associated_contacts"] || c.OwnerID != p["hubspot_owner_id"] {
			t.Fatalf("company %s = %+v, sandbox %v", id, c.Company, p)
		}
		total += c.OpenDeals
	}
	if total == 0 {
		t.Fatal("no open deals at all: the check proves nothing")
	}
}

func TestFullReadSweepsDeletedRecords(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	ids := f.sb.SeedCompanies(
		map[string]string{"name": "A", "domain": "a-sweep.com"},
		map[string]string{"name": "B", "domain": "b-sweep.com"},
		map[string]string{"name": "C", "domain": "c-sweep.com"},
	)
	f.full(t, mirror.Companies)
	if err := f.hc.Archive(context.Background(), hubspot.Companies, ids[1]); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	run := f.full(t, mirror.Companies)
	if run.Deleted != 1 || run.Records != 2 {
		t.Fatalf("second full read = %+v, want 2 records and 1 deleted", run)
	}
	res := f.lookup(t, "a-sweep.com", "b-sweep.com", "c-sweep.com")
	if !res[0].Known || res[1].Known || !res[2].Known {
		t.Fatalf("after the sweep: %+v", res)
	}
}

// More than 10,000 companies (past search's cap), then a bulk edit that stamps 12,000 of
// them with one timestamp: the incremental read must deliver every one.
func TestIncrementalReadAfterBulkEditOfTwelveThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("12,000 records")
	}
	t.Parallel()
	f := newFixture(t, 0)
	f.sb.Generate(hubspottest.GenerateOptions{Companies: 12_000, AliasRate: 0.2, DuplicateDomainRate: 0.05, WebsiteOnlyRate: 0.05, Seed: 3})
	run := f.full(t, mirror.Companies)
	if run.Records != 12_000 {
		t.Fatalf("full read = %+v", run)
	}
	owners := f.sb.Owners()
	newOwner := owners[len(owners)-1].ID
	f.clock.Advance(10 * time.Minute)
	ids := f.sb.IDs(hubspottest.Companies)
	if err := f.sb.BulkEdit(hubspottest.Companies, ids, map[string]string{"hubspot_owner_id": newOwner}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	run = f.incremental(t, mirror.Companies)
	if run.Records < 12_000 || run.Error != "" {
		t.Fatalf("incremental read = %+v, want ≥ 12,000 records", run)
	}
	companies, err := f.store.Companies(context.Background(), f.portal, ids)
	if err != nil {
		t.Fatal(err)
	}
	stamp := companies[ids[0]].Modified
	for _, id := range ids {
		c := companies[id]
		if c.OwnerID != newOwner || c.Modified != stamp {
			t.Fatalf("company %s = %+v, want owner %s and the bulk edit's stamp %d", id, c.Company, newOwner, stamp)
		}
	}
	// Nothing changed since: the next read finds nothing new.
	f.clock.Advance(2 * time.Hour)
	if run := f.incremental(t, mirror.Companies); run.Written != 0 {
		t.Fatalf("idle incremental read wrote %d records: %+v", run.Written, run)
	}
}

// 25,000 companies modified within one hour, each getting a new domain, are all picked
// up by the next hourly read, and their old domains leave the index.
func TestIncrementalReadOfTwentyFiveThousandChangesInOneHour(t *testing.T) {
	if testing.Short() {
		t.Skip("25,000 records")
	}
	t.Parallel()
	f := newFixture(t, 0)
	f.sb.Generate(hubspottest.GenerateOptions{Companies: 25_000, Seed: 11})
	f.full(t, mirror.Companies)
	ids := f.sb.IDs(hubspottest.Companies)
	oldDomain := map[string]string{}
	for _, id := range ids {
		p, _ := f.sb.Object(hubspottest.Companies, id)
		oldDomain[id] = p["domain"]
	}
	step := time.Hour / time.Duration(len(ids))
	for i, id := range ids {
		f.clock.Advance(step)
		if err := f.sb.UIEdit(hubspottest.Companies, id, map[string]string{"domain": fmt.Sprintf("moved-%d.example.com", i), "website": ""}); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(time.Minute)
	run := f.incremental(t, mirror.Companies)
	if run.Records < len(ids) || run.Error != "" {
		t.Fatalf("incremental read = %+v, want ≥ %d records", run, len(ids))
	}
	t.Logf("incremental read of %d changes: %d search calls", len(ids), run.Calls)
	f.checkCompaniesMirrored(t)
	for start := 0; start < len(ids); start += 1000 {
		var olds []string
		for _, id := range ids[start:min(start+1000, len(ids))] {
			if d := oldDomain[id]; d != "" {
				olds = append(olds, d)
			}
		}
		for i, r := range f.lookup(t, olds...) {
			if r.Known {
				t.Fatalf("old domain %s still indexed: %+v", olds[i], r)
			}
		}
	}
}

// A change that search does not show yet is not lost: the cursor stays behind the index
// lag, and the next read picks the change up.
func TestIncrementalReadSurvivesSearchIndexLag(t *testing.T) {
	t.Parallel()
	lag := 30 * time.Second
	f := newFixture(t, lag)
	ids := f.sb.SeedCompanies(map[string]string{"name": "Lagging", "domain": "before-lag.com"})
	f.full(t, mirror.Companies)
	f.clock.Advance(2 * time.Hour)
	if err := f.sb.UIEdit(hubspottest.Companies, ids[0], map[string]string{"domain": "after-lag.com"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(lag / 3)
	f.incremental(t, mirror.Companies) // search still shows the old version
	res := f.lookup(t, "before-lag.com", "after-lag.com")
	if !res[0].Known || res[1].Known {
		t.Fatalf("search showed the change before its lag: %+v", res)
	}
	f.clock.Advance(lag)
	f.incremental(t, mirror.Companies)
	res = f.lookup(t, "before-lag.com", "after-lag.com")
	if res[0].Known || len(res[1].Hits) != 1 || res[1].Hits[0].Company.ID != ids[0] {
		t.Fatalf("the change was lost behind the index lag: %+v", res)
	}
}

func TestIncrementalDealsTrackOpenDeals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	co := f.sb.SeedCompanies(map[string]string{"name": "Dealco", "domain": "dealco.com"})
	deals := f.sb.SeedDeals(
		map[string]string{"dealname": "one", "dealstage": "qualifiedtobuy", "pipeline": "default"},
		map[string]string{"dealname": "two", "dealstage": "closedwon", "pipeline": "default"},
	)
	for _, d := range deals {
		if err := f.sb.Associate(hubspottest.Deals, d, hubspottest.Companies, co[0]); err != nil {
			t.Fatal(err)
		}
	}
	for _, obj := range mirror.Objects {
		f.full(t, obj)
	}
	open := func() int {
		t.Helper()
		recs, err := f.store.Companies(context.Background(), f.portal, co)
		if err != nil {
			t.Fatal(err)
		}
		return recs[co[0]].OpenDeals
	}
	if n := open(); n != 1 {
		t.Fatalf("open deals after full read = %d, want 1", n)
	}
	f.clock.Advance(2 * time.Hour)
	if err := f.sb.UIEdit(hubspottest.Deals, deals[0], map[string]string{"dealstage": "closedlost"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	f.incremental(t, mirror.Deals)
	if n := open(); n != 0 {
		t.Fatalf("open deals after the deal closed = %d, want 0", n)
	}
}

func TestRefreshWritesFoundAndDeletesMissing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	ids := f.sb.SeedCompanies(
		map[string]string{"name": "Keep", "domain": "keep-refresh.com"},
		map[string]string{"name": "Gone", "domain": "gone-refresh.com"},
	)
	f.full(t, mirror.Companies)
	ctx := context.Background()
	if _, err := f.hc.Update(ctx, hubspot.Companies, ids[0], "", map[string]string{"domain": "kept-refresh.com"}); err != nil {
		t.Fatal(err)
	}
	if err := f.hc.Archive(ctx, hubspot.Companies, ids[1]); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	res, err := f.reader.Refresh(ctx, f.portal, f.hc, mirror.Companies, ids)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Found, ids[:1]) || !slices.Equal(res.Missing, ids[1:]) || res.Calls != 1 {
		t.Fatalf("refresh = %+v", res)
	}
	got := f.lookup(t, "keep-refresh.com", "kept-refresh.com", "gone-refresh.com")
	if got[0].Known || !got[1].Known || got[2].Known {
		t.Fatalf("after refresh: %+v", got)
	}
	// A lagging full-read copy of the archived company cannot bring it back.
	st, err := f.store.PutCompanies(ctx, f.portal, []mirror.CompanyRecord{{Company: match.Company{ID: ids[1], Modified: 1}, Entries: match.CompanyEntries("gone-refresh.com", "", "")}})
	if err != nil || st.Skipped != 1 {
		t.Fatalf("stale write of a deleted company = %+v, %v", st, err)
	}
}
