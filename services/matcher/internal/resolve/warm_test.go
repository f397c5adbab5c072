package resolve_test

import (
	"context"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/redisx"
	"github.com/signalbridge/signalbridge/services/matcher/internal/match"
	"github.com/signalbridge/signalbridge/services/matcher/internal/mirror"
	"github.com/signalbridge/signalbridge/services/matcher/internal/resolve"
)

func companyRecord(id string, modified int64, name, domain string) mirror.CompanyRecord {
	return mirror.CompanyRecord{
		Company: match.Company{ID: id, Name: name, Modified: modified},
		Entries: match.CompanyEntries(domain, "", ""),
	}
}

func contactRecord(id string, modified int64, email, companyID string) mirror.ContactRecord {
	return mirror.ContactRecord{
		Contact: match.Contact{ID: id, CompanyID: companyID, Modified: modified},
		Entries: []match.Entry{{Key: email, Property: match.PropEmail}},
	}
}

// The in-memory answers of one replica follow the mirror writes of any other (here a
// second Store on the same Redis, as another matcher replica or the CRM consumer would
// write): each look-up reads the portal's generation first.
func TestWarmAnswersFollowWritesOfAnyReplica(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	other := mirror.NewStore(f.rdb, time.Hour) // another replica's writes
	must := func(_ mirror.WriteStats, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(other.PutCompanies(ctx, f.portal, []mirror.CompanyRecord{companyRecord("1", 1, "Acme", "acme.com")}))
	must(other.PutContacts(ctx, f.portal, []mirror.ContactRecord{contactRecord("7", 1, "ann@acme.com", "1")}))
	if err := other.SetReady(ctx, f.portal); err != nil {
		t.Fatal(err)
	}
	r := f.resolver(resolve.Options{})
	q := resolve.Query{Account: account(t, "acme.com"), Email: "ann@acme.com"}
	check := func(what, wantName string, wantOpen int, wantContactCompany string) {
		t.Helper()
		a := resolveOne(t, r, f.portal, q)
		gotName, gotOpen, gotCompany := "", -1, ""
		if a.Account.Company != nil {
			gotName, gotOpen = a.Account.Company.Name, a.Account.Company.OpenDeals
		}
		if a.Contact.Contact != nil {
			gotCompany = a.Contact.Contact.CompanyID
		}
		if gotName != wantName || gotOpen != wantOpen || gotCompany != wantContactCompany {
			t.Fatalf("%s: company %q with %d open deals, contact's company %q; want %q, %d, %q",
				what, gotName, gotOpen, gotCompany, wantName, wantOpen, wantContactCompany)
		}
	}
	check("first look-up", "Acme", 0, "1")
	if st := r.Stats(); st.WarmHits != 0 || st.WarmEntries != 2 {
		t.Fatalf("after the first look-up: %+v, want 0 warm hits and 2 entries", st)
	}
	check("second look-up", "Acme", 0, "1")
	if st := r.Stats(); st.WarmHits != 2 {
		t.Fatalf("after the second look-up: %d warm hits, want 2 (domain and email from memory)", st.WarmHits)
	}

	// A change that bypasses the scripts, and so the generation, is not seen: proof that
	// the answer comes from memory.
	recs := redisx.Key(f.portal, "co")
	stored, err := f.rdb.HGet(ctx, recs, "1").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.rdb.HSet(ctx, recs, "1", stored+"-").Err(); err != nil {
		t.Fatal(err)
	}
	check("after an unversioned change", "Acme", 0, "1")

	must(other.PutCompanies(ctx, f.portal, []mirror.CompanyRecord{companyRecord("1", 2, "Acme Corp", "acme.com")}))
	check("after a company update", "Acme Corp", 0, "1")
	must(other.PutDeals(ctx, f.portal, []mirror.DealRecord{{ID: "10", Open: true, Companies: []string{"1"}, Modified: 1}}))
	check("after an open deal", "Acme Corp", 1, "1")
	must(other.PutCompanies(ctx, f.portal, []mirror.CompanyRecord{companyRecord("2", 1, "Beta", "beta.com")}))
	must(other.PutContacts(ctx, f.portal, []mirror.ContactRecord{contactRecord("7", 2, "ann@acme.com", "2")}))
	check("after the contact moved", "Acme Corp", 1, "2")
	must(other.PutCompanies(ctx, f.portal, []mirror.CompanyRecord{companyRecord("1", 3, "Acme Corp", "acme.io")}))
	check("after the domain moved away", "Beta", 0, "2") // matched through the contact's company
	if _, err := other.Delete(ctx, f.portal, mirror.Contacts, []string{"7"}, time.UnixMilli(3)); err != nil {
		t.Fatal(err)
	}
	check("after the contact's deletion", "", -1, "")
}

// Redis that restarted empty or was flushed: its new data is answered, not what the
// replica kept from before, even when the counters reach the same values again.
func TestWarmAnswersAreDroppedWhenRedisLosesItsData(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	put := func(c mirror.CompanyRecord) {
		t.Helper()
		if _, err := f.store.PutCompanies(ctx, f.portal, []mirror.CompanyRecord{c}); err != nil {
			t.Fatal(err)
		}
	}
	put(companyRecord("1", 1, "Acme", "acme.com"))
	if err := f.store.SetReady(ctx, f.portal); err != nil {
		t.Fatal(err)
	}
	r := f.resolver(resolve.Options{})
	q := resolve.Query{Account: account(t, "acme.com")}
	for range 2 {
		if a := resolveOne(t, r, f.portal, q); a.Account.Company == nil || a.Account.Company.ID != "1" {
			t.Fatalf("before the loss: %+v", a.Account)
		}
	}
	// Lose every key of the portal, then write the same number of changes again.
	keys, err := f.rdb.Keys(ctx, redisx.Key(f.portal, "*")).Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("portal keys: %v, %v", keys, err)
	}
	if err := f.rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	put(companyRecord("2", 1, "Other", "acme.com"))
	if err := f.store.SetReady(ctx, f.portal); err != nil {
		t.Fatal(err)
	}
	if a := resolveOne(t, r, f.portal, q); a.Account.Company == nil || a.Account.Company.ID != "2" {
		t.Fatalf("after the loss: %+v, want company 2", a.Account)
	}
}

func TestWarmCacheIsBoundedAndCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	var cs []mirror.CompanyRecord
	var qs []resolve.Query
	for i, d := range []string{"a.com", "b.com", "c.com"} {
		cs = append(cs, companyRecord(string(rune('1'+i)), 1, d, d))
		qs = append(qs, resolve.Query{Account: account(t, d)})
	}
	if _, err := f.store.PutCompanies(ctx, f.portal, cs); err != nil {
		t.Fatal(err)
	}
	if err := f.store.SetReady(ctx, f.portal); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		max         int
		wantEntries int
	}{{2, 2}, {-1, 0}} {
		r := f.resolver(resolve.Options{WarmMax: tc.max})
		for range 3 {
			for _, q := range qs {
				if a := resolveOne(t, r, f.portal, q); a.Account.Company == nil {
					t.Fatalf("WarmMax %d: %v unmatched", tc.max, q.Account.Domains)
				}
			}
		}
		st := r.Stats()
		if st.WarmEntries > tc.wantEntries || (tc.max < 0 && st.WarmHits != 0) {
			t.Fatalf("WarmMax %d: %d entries, %d hits; want at most %d entries", tc.max, st.WarmEntries, st.WarmHits, tc.wantEntries)
		}
	}
}
