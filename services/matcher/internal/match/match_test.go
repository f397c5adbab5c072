package match

import (
	"errors"
	"reflect"
	"testing"

	"github.com/signalbridge/signalbridge/libs/domain"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
)

func TestCompanyEntries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                        string
		domainValue, website, extra string
		want                        []Entry
	}{
		{"domain only", "acme.com", "", "", []Entry{{"acme.com", PropDomain}}},
		{"domain normalised", "https://WWW.Acme.COM/about", "", "", []Entry{{"acme.com", PropDomain}}},
		{"website ignored when domain set", "acme.com", "https://www.acme-old.com", "", []Entry{{"acme.com", PropDomain}}},
		{"website fallback without domain", "", "https://www.Acme.com/en/", "", []Entry{{"acme.com", PropWebsite}}},
		{"website fallback when domain invalid", "not a domain", "acme.com", "", []Entry{{"acme.com", PropWebsite}}},
		{"website fallback when domain is blank", "   ", "http://acme.io", "", []Entry{{"acme.io", PropWebsite}}},
		{"subdomain kept distinct", "us.acme.com", "", "", []Entry{{"us.acme.com", PropDomain}}},
		{"www2 is a subdomain", "www2.acme.com", "", "", []Entry{{"www2.acme.com", PropDomain}}},
		{"additional domains, semicolons", "acme.com", "", "acme.io;acme.net", []Entry{
			{"acme.com", PropDomain}, {"acme.io", PropAdditionalDomains}, {"acme.net", PropAdditionalDomains}}},
		{"additional domains, commas spaces and case", "", "", " Acme.IO , www.acme.net\tacme.de", []Entry{
			{"acme.io", PropAdditionalDomains}, {"acme.net", PropAdditionalDomains}, {"acme.de", PropAdditionalDomains}}},
		{"additional repeats the domain", "acme.com", "", "acme.com;www.acme.com;acme.io", []Entry{
			{"acme.com", PropDomain}, {"acme.io", PropAdditionalDomains}}},
		{"invalid additional dropped", "acme.com", "", "localhost;10.0.0.1;acme.io;co.uk", []Entry{
			{"acme.com", PropDomain}, {"acme.io", PropAdditionalDomains}}},
		{"free-mail domain never indexed", "gmail.com", "", "", nil},
		{"free-mail domain: no website fallback", "gmail.com", "https://acme.com", "", nil},
		{"free-mail website never indexed", "", "https://outlook.com", "", nil},
		{"free-mail additional dropped", "acme.com", "", "gmail.com;yahoo.co.uk;acme.io", []Entry{
			{"acme.com", PropDomain}, {"acme.io", PropAdditionalDomains}}},
		{"nothing usable", "", "", "", nil},
		{"idn to punycode", "bücher.de", "", "", []Entry{{"xn--bcher-kva.de", PropDomain}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := CompanyEntries(tc.domainValue, tc.website, tc.extra)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("CompanyEntries(%q, %q, %q) = %v, want %v", tc.domainValue, tc.website, tc.extra, got, tc.want)
			}
		})
	}
}

func TestContactEntries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, email, extra string
		want               []Entry
	}{
		{"email lower-cased", "Ann@Acme.COM", "", []Entry{{"ann@acme.com", PropEmail}}},
		{"additional emails", "ann@acme.com", "ann@acme.io;A.Smith@Acme.net", []Entry{
			{"ann@acme.com", PropEmail}, {"ann@acme.io", PropAdditionalEmails}, {"a.smith@acme.net", PropAdditionalEmails}}},
		{"additional only", "", "ann@acme.io", []Entry{{"ann@acme.io", PropAdditionalEmails}}},
		{"repeat dropped", "ann@acme.com", "ANN@acme.com", []Entry{{"ann@acme.com", PropEmail}}},
		{"free-mail contacts are fine", "ann@gmail.com", "", []Entry{{"ann@gmail.com", PropEmail}}},
		{"invalid dropped", "not-an-email", "x@localhost;ann@acme.io", []Entry{{"ann@acme.io", PropAdditionalEmails}}},
		{"none", "", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ContactEntries(tc.email, tc.extra); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ContactEntries(%q, %q) = %v, want %v", tc.email, tc.extra, got, tc.want)
			}
		})
	}
}

func TestNormalizeAccount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		primary  string
		aliases  []string
		want     Account
		badField []string
	}{
		{"primary only", "https://www.Dropbox.com/app", nil, Account{Domains: []string{"dropbox.com"}}, nil},
		{"aliases in order, repeats dropped", "acme.com", []string{"WWW.ACME.COM", "acme.io", "acme.io", "us.acme.com"},
			Account{Domains: []string{"acme.com", "acme.io", "us.acme.com"}}, nil},
		{"free-mail separated", "gmail.com", []string{"acme.com", "hotmail.com"},
			Account{Domains: []string{"acme.com"}, FreeMail: []string{"gmail.com", "hotmail.com"}}, nil},
		{"only free-mail", "gmail.com", nil, Account{FreeMail: []string{"gmail.com"}}, nil},
		{"empty primary with aliases", "", []string{"acme.com"}, Account{Domains: []string{"acme.com"}}, nil},
		{"nothing", "", nil, Account{}, nil},
		{"invalid values reported with their field", "localhost", []string{"acme.com", "", "10.1.1.1", "co.uk"},
			Account{Domains: []string{"acme.com"}}, []string{"domain", "aliases[1]", "aliases[2]", "aliases[3]"}},
	}
	// The memos answer as NormalizeAccount does, cold and warm; the tiny one starts
	// again empty all the time; the shared one is used by the parallel cases at once.
	shared, tiny := NewDomainMemo(1000), NewDomainMemo(2)
	normalizers := map[string]func(string, []string) (Account, []*FieldError){
		"plain": NormalizeAccount, "memo": shared.NormalizeAccount, "tiny memo": tiny.NormalizeAccount,
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				for name, normalize := range normalizers {
					for round := range 2 {
						got, errs := normalize(tc.primary, tc.aliases)
						if !reflect.DeepEqual(got, tc.want) {
							t.Errorf("%s, round %d: account = %+v, want %+v", name, round, got, tc.want)
						}
						var fields []string
						for _, e := range errs {
							fields = append(fields, e.Field)
							if e.Error() == "" || errors.Unwrap(e) == nil {
								t.Errorf("%s, round %d: error %#v has no message or cause", name, round, e)
							}
						}
						if !reflect.DeepEqual(fields, tc.badField) {
							t.Errorf("%s, round %d: error fields = %v, want %v", name, round, fields, tc.badField)
						}
					}
				}
			})
		}
	}) // the parallel cases have all ended here
	if n := len(tiny.seen); n == 0 || n > 2 {
		t.Errorf("tiny memo holds %d inputs, want 1 or 2", n)
	}
	_, errs := NormalizeAccount("10.0.0.1", nil)
	if len(errs) != 1 || !errors.Is(errs[0], domain.ErrIPAddress) {
		t.Errorf("IP address error = %v, want one wrapping domain.ErrIPAddress", errs)
	}
}

func co(id string, deals, contacts int, modified int64) Company {
	return Company{ID: id, Name: "Co " + id, NumDeals: deals, NumContacts: contacts, Modified: modified}
}

func TestResolveAccount(t *testing.T) {
	t.Parallel()
	var (
		none     = signalsv1.TieBreak_TIE_BREAK_NONE
		deals    = signalsv1.TieBreak_TIE_BREAK_MOST_DEALS
		contacts = signalsv1.TieBreak_TIE_BREAK_MOST_CONTACTS
		modified = signalsv1.TieBreak_TIE_BREAK_MOST_RECENTLY_MODIFIED
		lowest   = signalsv1.TieBreak_TIE_BREAK_LOWEST_ID
		rDomain  = signalsv1.MatchRule_MATCH_RULE_COMPANY_DOMAIN
		rWebsite = signalsv1.MatchRule_MATCH_RULE_COMPANY_WEBSITE
		rExtra   = signalsv1.MatchRule_MATCH_RULE_ADDITIONAL_DOMAIN
	)
	tests := []struct {
		name       string
		account    Account
		hits       [][]Hit
		wantID     string
		wantReason signalsv1.UnmatchedReason
		wantEv     Evidence
	}{
		{
			name:    "single company by domain",
			account: Account{Domains: []string{"acme.com"}},
			hits:    [][]Hit{{{co("7", 0, 0, 1), PropDomain}}},
			wantID:  "7",
			wantEv:  Evidence{MatchedKey: "acme.com", Property: PropDomain, Rule: rDomain, TieBreak: none, CandidateIDs: []string{"7"}},
		},
		{
			name:    "website fallback evidence",
			account: Account{Domains: []string{"acme.com"}},
			hits:    [][]Hit{{{co("7", 0, 0, 1), PropWebsite}}},
			wantID:  "7",
			wantEv:  Evidence{MatchedKey: "acme.com", Property: PropWebsite, Rule: rWebsite, TieBreak: none, CandidateIDs: []string{"7"}},
		},
		{
			name:    "alias matches an additional domain",
			account: Account{Domains: []string{"acme.com", "acme.io"}},
			hits:    [][]Hit{nil, {{co("9", 0, 0, 1), PropAdditionalDomains}}},
			wantID:  "9",
			wantEv:  Evidence{MatchedKey: "acme.io", Property: PropAdditionalDomains, Rule: rExtra, TieBreak: none, CandidateIDs: []string{"9"}},
		},
		{
			name:    "most deals wins",
			account: Account{Domains: []string{"acme.com"}},
			hits:    [][]Hit{{{co("1", 2, 50, 9), PropDomain}, {co("2", 3, 1, 1), PropDomain}}},
			wantID:  "2",
			wantEv:  Evidence{MatchedKey: "acme.com", Property: PropDomain, Rule: rDomain, TieBreak: deals, CandidateIDs: []string{"2", "1"}},
		},
		{
			name:    "deals equal: most contacts wins",
			account: Account{Domains: []string{"acme.com"}},
			hits:    [][]Hit{{{co("1", 2, 5, 9), PropDomain}, {co("2", 2, 6, 1), PropDomain}}},
			wantID:  "2",
			wantEv:  Evidence{MatchedKey: "acme.com", Property: PropDomain, Rule: rDomain, TieBreak: contacts, CandidateIDs: []string{"2", "1"}},
		},
		{
			name:    "deals and contacts equal: most recently modified wins",
			account: Account{Domains: []string{"acme.com"}},
			hits:    [][]Hit{{{co("1", 2, 5, 9), PropDomain}, {co("2", 2, 5, 10), PropDomain}}},
			wantID:  "2",
			wantEv:  Evidence{MatchedKey: "acme.com", Property: PropDomain, Rule: rDomain, TieBreak: modified, CandidateIDs: []string{"2", "1"}},
		},
		{
			name:    "all equal: lowest id wins, numerically",
			account: Account{Domains: []string{"acme.com"}},
			hits:    [][]Hit{{{co("100", 2, 5, 9), PropDomain}, {co("99", 2, 5, 9), PropDomain}, {co("1000", 2, 5, 9), PropDomain}}},
			wantID:  "99",
			wantEv:  Evidence{MatchedKey: "acme.com", Property: PropDomain, Rule: rDomain, TieBreak: lowest, CandidateIDs: []string{"99", "100", "1000"}},
		},
		{
			name:    "tie-break names the rule between winner and runner-up only",
			account: Account{Domains: []string{"acme.com"}},
			hits:    [][]Hit{{{co("1", 1, 9, 9), PropDomain}, {co("2", 5, 1, 1), PropDomain}, {co("3", 5, 2, 1), PropDomain}}},
			wantID:  "3",
			wantEv:  Evidence{MatchedKey: "acme.com", Property: PropDomain, Rule: rDomain, TieBreak: contacts, CandidateIDs: []string{"3", "2", "1"}},
		},
		{
			name:    "candidates pooled across primary and aliases",
			account: Account{Domains: []string{"acme.com", "acme.io"}},
			hits:    [][]Hit{{{co("1", 1, 0, 0), PropDomain}}, {{co("2", 4, 0, 0), PropAdditionalDomains}}},
			wantID:  "2",
			wantEv:  Evidence{MatchedKey: "acme.io", Property: PropAdditionalDomains, Rule: rExtra, TieBreak: deals, CandidateIDs: []string{"2", "1"}},
		},
		{
			name:    "same company under several domains keeps the most direct evidence",
			account: Account{Domains: []string{"acme.com", "acme.io"}},
			hits:    [][]Hit{{{co("5", 0, 0, 0), PropAdditionalDomains}}, {{co("5", 0, 0, 0), PropDomain}}},
			wantID:  "5",
			wantEv:  Evidence{MatchedKey: "acme.com", Property: PropAdditionalDomains, Rule: rExtra, TieBreak: none, CandidateIDs: []string{"5"}},
		},
		{
			name:       "no company",
			account:    Account{Domains: []string{"acme.com"}},
			hits:       [][]Hit{nil},
			wantReason: signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_COMPANY,
		},
		{
			name:       "hits shorter than domains",
			account:    Account{Domains: []string{"acme.com", "acme.io"}},
			wantReason: signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_COMPANY,
		},
		{
			name:       "only free-mail",
			account:    Account{FreeMail: []string{"gmail.com"}},
			wantReason: signalsv1.UnmatchedReason_UNMATCHED_REASON_FREE_MAIL_DOMAIN,
		},
		{
			name:       "no domain",
			account:    Account{},
			wantReason: signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_DOMAIN,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ResolveAccount(tc.account, tc.hits)
			if tc.wantID == "" {
				if got.Matched() || got.Unmatched != tc.wantReason || got.Proto() != nil {
					t.Fatalf("got %+v, want unmatched %v", got, tc.wantReason)
				}
				return
			}
			if !got.Matched() || got.Company.ID != tc.wantID || got.Unmatched != 0 {
				t.Fatalf("got %+v, want company %s", got, tc.wantID)
			}
			if !reflect.DeepEqual(got.Evidence, tc.wantEv) {
				t.Errorf("evidence = %+v, want %+v", got.Evidence, tc.wantEv)
			}
			p := got.Proto()
			if p.CompanyId != tc.wantID || p.Evidence.Rule != tc.wantEv.Rule || p.Evidence.TieBreak != tc.wantEv.TieBreak ||
				p.Evidence.MatchedDomain != tc.wantEv.MatchedKey || p.Evidence.MatchedProperty != tc.wantEv.Property {
				t.Errorf("proto = %v does not carry the answer", p)
			}
		})
	}
}

// The answer must not depend on the order in which candidates were found.
func TestResolveAccountIsDeterministic(t *testing.T) {
	t.Parallel()
	a := co("10", 3, 3, 5)
	b := co("11", 3, 3, 5)
	c := co("12", 3, 3, 4)
	orders := [][]Company{{a, b, c}, {c, b, a}, {b, c, a}, {b, a, c}}
	for _, order := range orders {
		var hits []Hit
		for _, x := range order {
			hits = append(hits, Hit{x, PropDomain})
		}
		got := ResolveAccount(Account{Domains: []string{"acme.com"}}, [][]Hit{hits})
		if got.Company.ID != "10" || got.Evidence.TieBreak != signalsv1.TieBreak_TIE_BREAK_LOWEST_ID ||
			!reflect.DeepEqual(got.Evidence.CandidateIDs, []string{"10", "11", "12"}) {
			t.Errorf("order %v: got %s %v %v", order, got.Company.ID, got.Evidence.TieBreak, got.Evidence.CandidateIDs)
		}
	}
}

func TestCompareIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"9", "10", -1}, {"10", "9", 1}, {"42", "42", 0}, {"007", "7", 0},
		{"123", "abc", -1}, {"abc", "123", 1}, {"abc", "abd", -1},
	}
	for _, tc := range tests {
		if got := compareIDs(tc.a, tc.b); got != tc.want {
			t.Errorf("compareIDs(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestResolveContact(t *testing.T) {
	t.Parallel()
	ct := func(id string) Contact { return Contact{ID: id, OwnerID: "o" + id, CompanyID: "c" + id} }
	tests := []struct {
		name     string
		hits     []ContactHit
		wantID   string
		wantRule signalsv1.MatchRule
		wantTie  signalsv1.TieBreak
		wantIDs  []string
	}{
		{"none", nil, "", 0, 0, nil},
		{"exact email", []ContactHit{{ct("5"), PropEmail}}, "5", signalsv1.MatchRule_MATCH_RULE_CONTACT_EMAIL, signalsv1.TieBreak_TIE_BREAK_NONE, []string{"5"}},
		{"additional email", []ContactHit{{ct("5"), PropAdditionalEmails}}, "5", signalsv1.MatchRule_MATCH_RULE_CONTACT_ADDITIONAL_EMAIL, signalsv1.TieBreak_TIE_BREAK_NONE, []string{"5"}},
		{"email beats additional email", []ContactHit{{ct("3"), PropAdditionalEmails}, {ct("8"), PropEmail}}, "8",
			signalsv1.MatchRule_MATCH_RULE_CONTACT_EMAIL, signalsv1.TieBreak_TIE_BREAK_NONE, []string{"8", "3"}},
		{"two additional: lowest id", []ContactHit{{ct("30"), PropAdditionalEmails}, {ct("4"), PropAdditionalEmails}}, "4",
			signalsv1.MatchRule_MATCH_RULE_CONTACT_ADDITIONAL_EMAIL, signalsv1.TieBreak_TIE_BREAK_LOWEST_ID, []string{"4", "30"}},
		{"same contact twice counted once", []ContactHit{{ct("4"), PropAdditionalEmails}, {ct("4"), PropAdditionalEmails}}, "4",
			signalsv1.MatchRule_MATCH_RULE_CONTACT_ADDITIONAL_EMAIL, signalsv1.TieBreak_TIE_BREAK_NONE, []string{"4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ResolveContact("ann@acme.com", tc.hits)
			if tc.wantID == "" {
				if got.Matched() || got.Proto() != nil {
					t.Fatalf("got %+v, want no contact", got)
				}
				return
			}
			if !got.Matched() || got.Contact.ID != tc.wantID {
				t.Fatalf("got %+v, want contact %s", got, tc.wantID)
			}
			ev := got.Evidence
			if ev.Rule != tc.wantRule || ev.TieBreak != tc.wantTie || ev.MatchedKey != "ann@acme.com" || !reflect.DeepEqual(ev.CandidateIDs, tc.wantIDs) {
				t.Errorf("evidence = %+v", ev)
			}
			if p := got.Proto(); p.ContactId != tc.wantID || p.OwnerId != "o"+tc.wantID || p.Evidence.Rule != tc.wantRule {
				t.Errorf("proto = %v", p)
			}
		})
	}
}

func TestViaContact(t *testing.T) {
	t.Parallel()
	contact := ResolveContact("ann@acme.com", []ContactHit{{Contact{ID: "5", CompanyID: "77"}, PropAdditionalEmails}})
	got := ViaContact(contact, co("77", 1, 1, 1))
	if !got.Matched() || got.Company.ID != "77" || got.Evidence.Rule != signalsv1.MatchRule_MATCH_RULE_CONTACT_ADDITIONAL_EMAIL ||
		got.Evidence.Property != PropAdditionalEmails || got.Evidence.MatchedKey != "ann@acme.com" {
		t.Fatalf("ViaContact = %+v", got)
	}
	if r := ViaContact(contact, co("78", 1, 1, 1)); r.Matched() {
		t.Errorf("a company other than the contact's primary company matched: %+v", r)
	}
	if r := ViaContact(ContactResult{}, co("77", 1, 1, 1)); r.Matched() || r.Unmatched != signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_COMPANY {
		t.Errorf("no contact: %+v", r)
	}
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	if e, err := NormalizeEmail(" Ann@Acme.COM "); err != nil || e != "ann@acme.com" {
		t.Errorf("NormalizeEmail = %q, %v", e, err)
	}
	if _, err := NormalizeEmail("Ann <ann@acme.com>"); err == nil || err.Field != "email" || !errors.Is(err, domain.ErrInvalidEmail) {
		t.Errorf("display-name form: err = %v", err)
	}
}
