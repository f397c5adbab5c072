package mirror_test

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/signalbridge/signalbridge/libs/redisx/redistest"
	"github.com/signalbridge/signalbridge/services/matcher/internal/match"
	"github.com/signalbridge/signalbridge/services/matcher/internal/mirror"
	"github.com/signalbridge/signalbridge/services/matcher/internal/testenv"
)

func newStore(t *testing.T) (*mirror.Store, string) {
	t.Helper()
	rdb := redistest.TestClient(t)
	return mirror.NewStore(rdb, time.Hour), strconv.FormatInt(testenv.PortalID(t, rdb), 10)
}

func company(id string, modified int64, domainValue, website, extra string) mirror.CompanyRecord {
	return mirror.CompanyRecord{
		Company: match.Company{ID: id, Name: "Company\x1e" + id, OwnerID: "o" + id, NumDeals: 2, NumContacts: 3, Modified: modified},
		Entries: match.CompanyEntries(domainValue, website, extra),
	}
}

func lookupDomains(t *testing.T, s *mirror.Store, portal string, domains ...string) (bool, []mirror.DomainResult) {
	t.Helper()
	lk := mirror.LookupDomains(domains)
	if err := s.Run(context.Background(), portal, lk); err != nil {
		t.Fatal(err)
	}
	ready, res, err := lk.Domains()
	if err != nil {
		t.Fatal(err)
	}
	return ready, res
}

func hitIDs(r mirror.DomainResult) map[string]string {
	out := map[string]string{}
	for _, h := range r.Hits {
		out[h.Company.ID] = h.Property
	}
	return out
}

func TestPutAndLookupCompanies(t *testing.T) {
	t.Parallel()
	s, portal := newStore(t)
	ctx := context.Background()
	st, err := s.PutCompanies(ctx, portal, []mirror.CompanyRecord{
		company("1", 100, "acme.com", "", "acme.io;acme.net"),
		company("2", 100, "", "https://www.acme.com/about", ""),
		company("3", 100, "us.acme.com", "", ""),
		company("4", 100, "gmail.com", "", ""),
	})
	if err != nil || st.Written != 4 {
		t.Fatalf("put = %+v, %v", st, err)
	}
	ready, res := lookupDomains(t, s, portal, "acme.com", "acme.io", "us.acme.com", "gmail.com", "unknown.com")
	if ready {
		t.Error("portal reported ready before any full read")
	}
	if got := hitIDs(res[0]); !reflect.DeepEqual(got, map[string]string{"1": match.PropDomain, "2": match.PropWebsite}) {
		t.Errorf("acme.com hits = %v", got)
	}
	if got := hitIDs(res[1]); !reflect.DeepEqual(got, map[string]string{"1": match.PropAdditionalDomains}) {
		t.Errorf("acme.io hits = %v", got)
	}
	if got := hitIDs(res[2]); !reflect.DeepEqual(got, map[string]string{"3": match.PropDomain}) {
		t.Errorf("us.acme.com hits = %v (subdomains are distinct)", got)
	}
	if res[3].Known || res[4].Known {
		t.Errorf("free-mail or unknown domain known: %+v %+v", res[3], res[4])
	}
	// The record round-trips, with control characters in free text made harmless.
	c := res[0].Hits[0].Company
	if c.ID == "2" {
		c = res[0].Hits[1].Company
	}
	want := match.Company{ID: "1", Name: "Company " + "1", OwnerID: "o1", NumDeals: 2, NumContacts: 3, Modified: 100}
	if c != want {
		t.Errorf("record = %+v, want %+v", c, want)
	}
}

func TestPutMovesIndexEntriesAndIgnoresOlderCopies(t *testing.T) {
	t.Parallel()
	s, portal := newStore(t)
	ctx := context.Background()
	must := func(st mirror.WriteStats, err error) mirror.WriteStats {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	must(s.PutCompanies(ctx, portal, []mirror.CompanyRecord{company("1", 100, "old.com", "", "alias.com")}))
	// The domain changes: the old entry goes, the new one comes, the alias stays.
	if st := must(s.PutCompanies(ctx, portal, []mirror.CompanyRecord{company("1", 200, "new.com", "", "alias.com")})); st.Written != 1 {
		t.Fatalf("update = %+v", st)
	}
	_, res := lookupDomains(t, s, portal, "old.com", "new.com", "alias.com")
	if res[0].Known || len(res[1].Hits) != 1 || len(res[2].Hits) != 1 {
		t.Fatalf("after the domain change: %+v", res)
	}
	// A stale copy (a lagging search result) does not undo it.
	if st := must(s.PutCompanies(ctx, portal, []mirror.CompanyRecord{company("1", 150, "old.com", "", "")})); st.Skipped != 1 {
		t.Fatalf("stale write = %+v, want skipped", st)
	}
	// The same copy again is unchanged.
	if st := must(s.PutCompanies(ctx, portal, []mirror.CompanyRecord{company("1", 200, "new.com", "", "alias.com")})); st.Unchanged != 1 {
		t.Fatalf("repeat write = %+v, want unchanged", st)
	}
	_, res = lookupDomains(t, s, portal, "old.com", "new.com")
	if res[0].Known || len(res[1].Hits) != 1 {
		t.Fatalf("after the stale write: %+v", res)
	}
}

func TestDeleteLeavesTombstoneAgainstStaleWrites(t *testing.T) {
	t.Parallel()
	s, portal := newStore(t)
	ctx := context.Background()
	if _, err := s.PutCompanies(ctx, portal, []mirror.CompanyRecord{company("1", 100, "acme.com", "", ""), company("2", 100, "acme.com", "", "")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutDeals(ctx, portal, []mirror.DealRecord{{ID: "50", Open: true, Companies: []string{"1"}, Modified: 1}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Delete(ctx, portal, mirror.Companies, []string{"1", "99"}, time.UnixMilli(300))
	if err != nil || n != 1 {
		t.Fatalf("delete = %d, %v", n, err)
	}
	_, res := lookupDomains(t, s, portal, "acme.com")
	if got := hitIDs(res[0]); !reflect.DeepEqual(got, map[string]string{"2": match.PropDomain}) {
		t.Fatalf("after delete: %v", got)
	}
	// A copy read before the deletion is refused; one modified after it (a restore) is not.
	st, err := s.PutCompanies(ctx, portal, []mirror.CompanyRecord{company("1", 250, "acme.com", "", "")})
	if err != nil || st.Skipped != 1 {
		t.Fatalf("stale write after delete = %+v, %v", st, err)
	}
	st, err = s.PutCompanies(ctx, portal, []mirror.CompanyRecord{company("1", 400, "acme.com", "", "")})
	if err != nil || st.Written != 1 {
		t.Fatalf("restore = %+v, %v", st, err)
	}
	recs, err := s.Companies(ctx, portal, []string{"1", "2", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs["1"].OpenDeals != 0 || recs["1"].Modified != 400 {
		t.Fatalf("companies = %+v (the deleted company's open deals went with it)", recs)
	}
}

func TestOpenDealsCountAndMove(t *testing.T) {
	t.Parallel()
	s, portal := newStore(t)
	ctx := context.Background()
	if _, err := s.PutCompanies(ctx, portal, []mirror.CompanyRecord{company("1", 1, "a.com", "", ""), company("2", 1, "b.com", "", "")}); err != nil {
		t.Fatal(err)
	}
	open := func() (int, int) {
		t.Helper()
		recs, err := s.Companies(ctx, portal, []string{"1", "2"})
		if err != nil {
			t.Fatal(err)
		}
		return recs["1"].OpenDeals, recs["2"].OpenDeals
	}
	put := func(ds ...mirror.DealRecord) {
		t.Helper()
		if _, err := s.PutDeals(ctx, portal, ds); err != nil {
			t.Fatal(err)
		}
	}
	put(mirror.DealRecord{ID: "10", Open: true, Companies: []string{"1"}, Modified: 1},
		mirror.DealRecord{ID: "11", Open: true, Companies: []string{"1", "2"}, Modified: 1},
		mirror.DealRecord{ID: "12", Open: false, Companies: []string{"1"}, Modified: 1})
	if a, b := open(); a != 2 || b != 1 {
		t.Fatalf("open deals = %d, %d; want 2, 1", a, b)
	}
	put(mirror.DealRecord{ID: "11", Open: false, Companies: []string{"1", "2"}, Modified: 2}, // closed
		mirror.DealRecord{ID: "10", Open: true, Companies: []string{"2"}, Modified: 2}) // moved
	if a, b := open(); a != 0 || b != 1 {
		t.Fatalf("after close and move: open deals = %d, %d; want 0, 1", a, b)
	}
	if _, err := s.Delete(ctx, portal, mirror.Deals, []string{"10"}, time.UnixMilli(3)); err != nil {
		t.Fatal(err)
	}
	if a, b := open(); a != 0 || b != 0 {
		t.Fatalf("after delete: open deals = %d, %d", a, b)
	}
	d, ok, err := s.Deal(ctx, portal, "11")
	if err != nil || !ok || d.Open || !reflect.DeepEqual(d.Companies, []string{"1", "2"}) {
		t.Fatalf("deal 11 = %+v, %v, %v", d, ok, err)
	}
}

func TestNegativeCacheAndInvalidation(t *testing.T) {
	t.Parallel()
	s, portal := newStore(t)
	ctx := context.Background()
	if err := s.CacheNegative(ctx, portal, mirror.Companies, []string{"new.com", "other.com"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, res := lookupDomains(t, s, portal, "new.com", "other.com")
	if !res[0].Known || !res[0].Negative || !res[1].Negative {
		t.Fatalf("negative answers not cached: %+v", res)
	}
	// A company appearing under the domain invalidates its negative answer.
	if _, err := s.PutCompanies(ctx, portal, []mirror.CompanyRecord{company("7", 1, "new.com", "", "")}); err != nil {
		t.Fatal(err)
	}
	_, res = lookupDomains(t, s, portal, "new.com", "other.com")
	if res[0].Negative || len(res[0].Hits) != 1 || !res[1].Negative {
		t.Fatalf("after the company appeared: %+v", res)
	}
	// Deleting it invalidates nothing stale: the domain becomes unknown, not negative.
	if _, err := s.Delete(ctx, portal, mirror.Companies, []string{"7"}, time.UnixMilli(2)); err != nil {
		t.Fatal(err)
	}
	_, res = lookupDomains(t, s, portal, "new.com")
	if res[0].Known {
		t.Fatalf("after delete: %+v", res[0])
	}
}

func TestContactsLookup(t *testing.T) {
	t.Parallel()
	s, portal := newStore(t)
	ctx := context.Background()
	_, err := s.PutContacts(ctx, portal, []mirror.ContactRecord{
		{Contact: match.Contact{ID: "5", OwnerID: "o", CompanyID: "1", Modified: 1}, Entries: match.ContactEntries("Ann@Acme.com", "ann@acme.io")},
		{Contact: match.Contact{ID: "6", Modified: 1}, Entries: match.ContactEntries("ann@acme.io", "")},
	})
	if err != nil {
		t.Fatal(err)
	}
	lk := mirror.LookupEmails([]string{"ann@acme.com", "ann@acme.io", "bob@acme.com"})
	if err := s.Run(ctx, portal, lk); err != nil {
		t.Fatal(err)
	}
	_, res, err := lk.Emails()
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Hits) != 1 || res[0].Hits[0].Contact != (match.Contact{ID: "5", OwnerID: "o", CompanyID: "1", Modified: 1}) || res[0].Hits[0].Property != match.PropEmail {
		t.Errorf("ann@acme.com = %+v", res[0])
	}
	got := map[string]string{}
	for _, h := range res[1].Hits {
		got[h.Contact.ID] = h.Property
	}
	if !reflect.DeepEqual(got, map[string]string{"5": match.PropAdditionalEmails, "6": match.PropEmail}) {
		t.Errorf("ann@acme.io = %v", got)
	}
	if res[2].Known {
		t.Errorf("bob@acme.com known: %+v", res[2])
	}
	if r := match.ResolveContact("ann@acme.io", res[1].Hits); r.Contact.ID != "6" {
		t.Errorf("exact email must beat additional email: %+v", r)
	}
}

func TestStateRunsAndLock(t *testing.T) {
	t.Parallel()
	s, portal := newStore(t)
	ctx := context.Background()
	run := mirror.Run{Object: mirror.Companies, Mode: mirror.ModeFull, Started: time.UnixMilli(1000).UTC(), Records: 5}
	if err := s.SaveRun(ctx, portal, run); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRun(ctx, portal, mirror.Run{Object: mirror.Companies, Mode: mirror.ModeIncremental, Records: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetReady(ctx, portal); err != nil {
		t.Fatal(err)
	}
	st, err := s.State(ctx, portal)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || st.Runs["companies"].Mode != mirror.ModeIncremental || st.Runs["companies:full"].Records != 5 {
		t.Fatalf("state = %+v", st)
	}
	ok1, err1 := s.Lock(ctx, portal, "a", time.Minute)
	ok2, err2 := s.Lock(ctx, portal, "b", time.Minute)
	ok3, err3 := s.Lock(ctx, portal, "a", time.Minute)
	if !ok1 || ok2 || !ok3 || err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("lock a=%v b=%v a again=%v (%v %v %v)", ok1, ok2, ok3, err1, err2, err3)
	}
	if err := s.Unlock(ctx, portal, "b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Lock(ctx, portal, "b", time.Minute); ok {
		t.Fatal("b unlocked a's lease")
	}
	if err := s.Unlock(ctx, portal, "a"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Lock(ctx, portal, "b", time.Minute); !ok {
		t.Fatal("lease not free after unlock")
	}
}

// After a Redis restart the server has forgotten the scripts: look-ups (pipelined
// EVALSHA) load them again. miniredis stands in here because flushing the scripts of
// the shared test Redis would disturb other tests.
func TestLookupSurvivesScriptFlush(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	s := mirror.NewStore(rdb, time.Hour)
	ctx := context.Background()
	if _, err := s.PutCompanies(ctx, "42", []mirror.CompanyRecord{company("1", 1, "acme.com", "", "")}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		_, res := lookupDomains(t, s, "42", "acme.com")
		if len(res[0].Hits) != 1 {
			t.Fatalf("round %d: %+v", i, res)
		}
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
}
