package resolve_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/hubspottest"
	"github.com/signalbridge/signalbridge/libs/redisx/redistest"
	"github.com/signalbridge/signalbridge/services/matcher/internal/match"
	"github.com/signalbridge/signalbridge/services/matcher/internal/mirror"
	"github.com/signalbridge/signalbridge/services/matcher/internal/resolve"
	"github.com/signalbridge/signalbridge/services/matcher/internal/testenv"
)

type fixture struct {
	hs     *testenv.HubSpot
	sb     *hubspottest.Portal
	rdb    *redis.Client
	store  *mirror.Store
	health *resolve.Health
	portal string
}

// TestMain silences go-redis's own logger, which reports every refused dial of the
// outage tests on stderr.
func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func newFixture(t *testing.T, rdb *redis.Client) *fixture {
	t.Helper()
	if rdb == nil {
		rdb = redistest.TestClient(t)
	}
	id := testenv.PortalID(t, rdb)
	hs := testenv.NewHubSpot(t, hubspottest.Options{})
	f := &fixture{hs: hs, sb: hs.AddPortal(t, id), rdb: rdb, store: mirror.NewStore(rdb, time.Hour),
		health: resolve.NewHealth(rdb, 20*time.Millisecond, nil), portal: strconv.FormatInt(id, 10)}
	return f
}

func (f *fixture) resolver(opts resolve.Options) *resolve.Resolver {
	return resolve.New(f.store, f.health, f.hs.Client, opts)
}

// mirrorAll runs full reads of every object and marks the portal ready.
func (f *fixture) mirrorAll(t *testing.T) {
	t.Helper()
	r := mirror.NewReader(f.store, mirror.ReaderOptions{})
	hc := f.hs.MustClient(t, f.portal)
	for _, obj := range mirror.Objects {
		if _, err := r.Full(context.Background(), f.portal, hc, obj); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.store.SetReady(context.Background(), f.portal); err != nil {
		t.Fatal(err)
	}
}

func account(t *testing.T, primary string, aliases ...string) match.Account {
	t.Helper()
	a, errs := match.NormalizeAccount(primary, aliases)
	if len(errs) > 0 {
		t.Fatalf("account %s %v: %v", primary, aliases, errs)
	}
	return a
}

func resolveOne(t *testing.T, r *resolve.Resolver, portal string, q resolve.Query) resolve.Answer {
	t.Helper()
	ans, err := r.Resolve(context.Background(), portal, []resolve.Query{q})
	if err != nil {
		t.Fatal(err)
	}
	return ans[0]
}

// expected computes, from the sandbox's data, the company the rules pick for a domain
// among the companies whose `domain` is that domain.
func expected(sb *hubspottest.Portal, byDomain map[string][]string, d string) string {
	var hits []match.Hit
	for _, id := range byDomain[d] {
		p, _ := sb.Object(hubspottest.Companies, id)
		rec := mirror.CompanyFrom(hubspot.Object{ID: id, Properties: p})
		hits = append(hits, match.Hit{Company: rec.Company, Property: match.PropDomain})
	}
	res := match.ResolveAccount(match.Account{Domains: []string{d}}, [][]match.Hit{hits})
	if !res.Matched() {
		return ""
	}
	return res.Company.ID
}

func TestColdStartCoalescesMissesIntoFewSearches(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.sb.Generate(hubspottest.GenerateOptions{Companies: 900, ContactsPerCompany: 1, DuplicateDomainRate: 0.1, AliasRate: 0.3, Seed: 5})
	byDomain := map[string][]string{}
	for _, id := range f.sb.IDs(hubspottest.Companies) {
		p, _ := f.sb.Object(hubspottest.Companies, id)
		byDomain[p["domain"]] = append(byDomain[p["domain"]], id)
	}
	var domains []string
	for d := range byDomain {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	for i := len(domains); i < 1000; i++ {
		domains = append(domains, fmt.Sprintf("unseen-%d.example.org", i))
	}
	domains = domains[:1000]
	r := f.resolver(resolve.Options{Linger: 20 * time.Millisecond})

	run := func() map[string]resolve.Answer {
		answers := map[string]resolve.Answer{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var qs []resolve.Query
				for i := w; i < len(domains); i += 40 {
					qs = append(qs, resolve.Query{Account: account(t, domains[i])})
				}
				ans, err := r.Resolve(context.Background(), f.portal, qs)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for i, q := range qs {
					answers[q.Account.Domains[0]] = ans[i]
				}
			}()
		}
		wg.Wait()
		return answers
	}
	answers := run()
	calls := f.sb.Stats().SearchCalls
	t.Logf("1,000 unseen domains: %d HubSpot searches (%+v)", calls, r.Stats())
	if calls > 12 || calls < 10 {
		t.Errorf("%d searches for 1,000 unseen domains, want 10..12", calls)
	}
	matched := 0
	for _, d := range domains {
		a := answers[d].Account
		want := expected(f.sb, byDomain, d)
		if want == "" {
			if a.Matched() || a.Unmatched != signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_COMPANY {
				t.Fatalf("%s: got %+v, want no company", d, a)
			}
			continue
		}
		matched++
		if !a.Matched() || a.Company.ID != want || a.Evidence.MatchedKey != d || a.Evidence.Rule != signalsv1.MatchRule_MATCH_RULE_COMPANY_DOMAIN {
			t.Fatalf("%s: got %+v / %+v, want company %s by domain", d, a.Company, a.Evidence, want)
		}
		if len(byDomain[d]) > 1 && a.Evidence.TieBreak == signalsv1.TieBreak_TIE_BREAK_NONE {
			t.Fatalf("%s: %d candidates but no tie-break named: %+v", d, len(byDomain[d]), a.Evidence)
		}
	}
	if matched < 700 {
		t.Fatalf("only %d of the domains name companies; the test proves little", matched)
	}
	// Again: positives are in the mirror now, negatives cached; HubSpot is not asked.
	again := run()
	if n := f.sb.Stats().SearchCalls; n != calls {
		t.Errorf("second pass made %d more searches", n-calls)
	}
	for _, d := range domains {
		if a, b := answers[d].Account, again[d].Account; a.Matched() != b.Matched() || (a.Matched() && a.Company.ID != b.Company.ID) {
			t.Fatalf("%s: answer changed from %+v to %+v", d, a.Company, b.Company)
		}
	}
}

func TestNegativeAnswerIsCachedInvalidatedAndExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	r := f.resolver(resolve.Options{NegativeTTL: 300 * time.Millisecond, Linger: time.Millisecond})
	q := resolve.Query{Account: account(t, "neg-cache.io")}
	if a := resolveOne(t, r, f.portal, q); a.Account.Matched() {
		t.Fatalf("matched %+v", a.Account)
	}
	if a := resolveOne(t, r, f.portal, q); a.Account.Matched() || f.sb.Stats().SearchCalls != 1 {
		t.Fatalf("second look-up searched again (%d searches)", f.sb.Stats().SearchCalls)
	}
	testenv.Eventually(t, 10*time.Second, "the negative answer to expire", func() bool {
		resolveOne(t, r, f.portal, q)
		return f.sb.Stats().SearchCalls == 2
	})
	// A change event adds the company to the mirror: the negative answer goes at once.
	if _, err := f.store.PutCompanies(context.Background(), f.portal, []mirror.CompanyRecord{{
		Company: match.Company{ID: "77", Name: "Neg", Modified: 1}, Entries: match.CompanyEntries("neg-cache.io", "", ""),
	}}); err != nil {
		t.Fatal(err)
	}
	a := resolveOne(t, r, f.portal, q)
	if !a.Account.Matched() || a.Account.Company.ID != "77" || f.sb.Stats().SearchCalls != 2 {
		t.Fatalf("after the change: %+v, %d searches", a.Account, f.sb.Stats().SearchCalls)
	}
}

func TestMirroredPortalAnswersEveryRuleFromTheMirror(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	co := f.sb.SeedCompanies(
		map[string]string{"name": "Few deals", "domain": "tie.com"},
		map[string]string{"name": "Most deals", "domain": "tie.com"},
		map[string]string{"name": "Web only", "website": "https://www.web-only.io/en"},
		map[string]string{"name": "Aliased", "domain": "main.com", "hs_additional_domains": "alias-one.com;alias-two.net"},
		map[string]string{"name": "US branch", "domain": "us.branch.com"},
		map[string]string{"name": "Free", "domain": "gmail.com"},
	)
	ct := f.sb.SeedContacts(map[string]string{"email": "ann@main.com", "hs_additional_emails": "ann@private.org", "associatedcompanyid": co[3]})
	// "Few deals" has 1 deal and 3 contacts, "Most deals" 4 deals and none.
	associate := func(from, fromID, to, toID string) {
		t.Helper()
		if err := f.sb.Associate(from, fromID, to, toID); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range f.sb.SeedDeals(make([]map[string]string, 5)...) {
		associate(hubspottest.Deals, d, hubspottest.Companies, co[min(i, 1)])
	}
	for _, c := range f.sb.SeedContacts(make([]map[string]string, 3)...) {
		associate(hubspottest.Contacts, c, hubspottest.Companies, co[0])
	}
	f.mirrorAll(t)
	r := f.resolver(resolve.Options{})
	tests := []struct {
		name     string
		q        resolve.Query
		wantCo   string
		wantRule signalsv1.MatchRule
		wantTie  signalsv1.TieBreak
		reason   signalsv1.UnmatchedReason
		wantCt   string
	}{
		{"most deals", resolve.Query{Account: account(t, "www.tie.com")}, co[1], signalsv1.MatchRule_MATCH_RULE_COMPANY_DOMAIN, signalsv1.TieBreak_TIE_BREAK_MOST_DEALS, 0, ""},
		{"website fallback", resolve.Query{Account: account(t, "web-only.io")}, co[2], signalsv1.MatchRule_MATCH_RULE_COMPANY_WEBSITE, signalsv1.TieBreak_TIE_BREAK_NONE, 0, ""},
		{"alias against hs_additional_domains", resolve.Query{Account: account(t, "unknown-primary.com", "alias-two.net")}, co[3], signalsv1.MatchRule_MATCH_RULE_ADDITIONAL_DOMAIN, signalsv1.TieBreak_TIE_BREAK_NONE, 0, ""},
		{"subdomain distinct", resolve.Query{Account: account(t, "branch.com")}, "", 0, 0, signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_COMPANY, ""},
		{"subdomain exact", resolve.Query{Account: account(t, "us.branch.com")}, co[4], signalsv1.MatchRule_MATCH_RULE_COMPANY_DOMAIN, signalsv1.TieBreak_TIE_BREAK_NONE, 0, ""},
		{"free-mail never matches", resolve.Query{Account: account(t, "gmail.com")}, "", 0, 0, signalsv1.UnmatchedReason_UNMATCHED_REASON_FREE_MAIL_DOMAIN, ""},
		{"contact by email", resolve.Query{Account: account(t, "main.com"), Email: "ann@main.com"}, co[3], signalsv1.MatchRule_MATCH_RULE_COMPANY_DOMAIN, signalsv1.TieBreak_TIE_BREAK_NONE, 0, ct[0]},
		{"company through the contact's additional email", resolve.Query{Account: account(t, "gmail.com"), Email: "ann@private.org"}, co[3], signalsv1.MatchRule_MATCH_RULE_CONTACT_ADDITIONAL_EMAIL, signalsv1.TieBreak_TIE_BREAK_NONE, 0, ct[0]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := resolveOne(t, r, f.portal, tc.q)
			if tc.wantCo == "" {
				if a.Account.Matched() || a.Account.Unmatched != tc.reason {
					t.Fatalf("got %+v, want unmatched %v", a.Account, tc.reason)
				}
			} else if !a.Account.Matched() || a.Account.Company.ID != tc.wantCo || a.Account.Evidence.Rule != tc.wantRule || a.Account.Evidence.TieBreak != tc.wantTie {
				t.Fatalf("got %+v / %+v, want %s by %v (%v)", a.Account.Company, a.Account.Evidence, tc.wantCo, tc.wantRule, tc.wantTie)
			}
			if tc.wantCt != "" && (!a.Contact.Matched() || a.Contact.Contact.ID != tc.wantCt) {
				t.Fatalf("contact = %+v, want %s", a.Contact, tc.wantCt)
			}
		})
	}
	if n := f.sb.Stats().SearchCalls; n != 0 {
		t.Errorf("a mirrored portal searched HubSpot %d times (SearchMirroredMisses off)", n)
	}
	// With SearchMirroredMisses, a domain the mirror lacks is asked once, then cached.
	r2 := f.resolver(resolve.Options{SearchMirroredMisses: true, Linger: time.Millisecond})
	for range 2 {
		resolveOne(t, r2, f.portal, resolve.Query{Account: account(t, "brand-new.com")})
	}
	if n := f.sb.Stats().SearchCalls; n != 1 {
		t.Errorf("%d searches for one new domain asked twice, want 1", n)
	}
}

func TestPortalWithoutClientIsReportedNotMirrored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	noClient := func(string) (*hubspot.Client, error) { return nil, errors.New("secret HUBSPOT_TOKEN_X is not set") }
	r := resolve.New(f.store, f.health, noClient, resolve.Options{Linger: time.Millisecond})
	a := resolveOne(t, r, f.portal, resolve.Query{Account: account(t, "acme.com")})
	if a.Account.Matched() || a.Account.Unmatched != signalsv1.UnmatchedReason_UNMATCHED_REASON_PORTAL_NOT_MIRRORED {
		t.Fatalf("got %+v", a.Account)
	}
}

func TestHubSpotFailureOfAnUnmirroredPortalIsAnError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.sb.Faults(hubspottest.Faults{ErrorRate: 1, ErrorStatus: 500})
	r := f.resolver(resolve.Options{Linger: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := r.Resolve(ctx, f.portal, []resolve.Query{{Account: account(t, "acme.com")}}); err == nil {
		t.Fatal("no error although HubSpot failed and the portal has no mirror")
	}
}

func TestRedisDownMatchesStraightFromHubSpotAndRecovers(t *testing.T) {
	t.Parallel()
	proxied, proxy, _ := testenv.ProxiedRedis(t)
	f := newFixture(t, proxied)
	co := f.sb.SeedCompanies(map[string]string{"name": "Outage", "domain": "outage.com"})
	f.mirrorAll(t)
	r := f.resolver(resolve.Options{Linger: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.health.Run(ctx)

	if a := resolveOne(t, r, f.portal, resolve.Query{Account: account(t, "outage.com")}); !a.Account.Matched() || r.Degraded() {
		t.Fatalf("before the outage: %+v, degraded %v", a.Account, r.Degraded())
	}
	proxy.Cut()
	for i := range 3 { // the first call finds Redis gone; the others skip it
		a := resolveOne(t, r, f.portal, resolve.Query{Account: account(t, "outage.com")})
		if !a.Account.Matched() || a.Account.Company.ID != co[0] {
			t.Fatalf("call %d during the outage: %+v", i, a.Account)
		}
	}
	if !r.Degraded() {
		t.Fatal("not degraded while Redis is down")
	}
	if n := f.sb.Stats().SearchCalls; n != 1 {
		t.Errorf("%d searches for one domain during the outage, want 1 (in-process cache)", n)
	}
	proxy.Restore()
	testenv.Eventually(t, 10*time.Second, "redis to be back", func() bool { return !r.Degraded() })
	a := resolveOne(t, r, f.portal, resolve.Query{Account: account(t, "outage.com")})
	if !a.Account.Matched() || f.sb.Stats().SearchCalls != 1 {
		t.Fatalf("after recovery: %+v, %d searches", a.Account, f.sb.Stats().SearchCalls)
	}
}

// A slow HubSpot does not hold look-ups of a mirrored portal past MissWait: they get the
// mirror's answer, and the HubSpot answer, when it comes, is cached for the next one.
func TestSlowHubSpotFallsBackToTheMirrorAfterMissWait(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.sb.SeedCompanies(map[string]string{"name": "Late", "domain": "late-answer.com"})
	slow := f.resolver(resolve.Options{SearchMirroredMisses: true, MissWait: 50 * time.Millisecond, Linger: time.Millisecond})
	f.sb.Faults(hubspottest.Faults{Latency: 500 * time.Millisecond})
	// Not mirrored: no answer to fall back to, so the caller hears about it.
	if _, err := slow.Resolve(context.Background(), f.portal, []resolve.Query{{Account: account(t, "late-answer.com")}}); err == nil {
		t.Fatal("no error for an unmirrored portal whose HubSpot is slower than MissWait")
	}
	if err := f.store.SetReady(context.Background(), f.portal); err != nil {
		t.Fatal(err)
	}
	a := resolveOne(t, slow, f.portal, resolve.Query{Account: account(t, "late-answer.com")})
	if a.Account.Matched() || a.Account.Unmatched != signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_COMPANY {
		t.Fatalf("mirrored portal, slow HubSpot: %+v", a.Account)
	}
	testenv.Eventually(t, 10*time.Second, "the late HubSpot answer to reach the mirror", func() bool {
		return resolveOne(t, slow, f.portal, resolve.Query{Account: account(t, "late-answer.com")}).Account.Matched()
	})
}
