// Package match holds the matching rules of signalbridge, as pure functions: which index
// entries a HubSpot company or contact contributes, how an account (primary domain plus
// aliases) resolves to one company, and how a visitor's email resolves to one contact.
// Every answer carries its evidence: the domain or email that matched, the HubSpot
// property it matched on, the rule, and the tie-break that chose between candidates.
//
// The rules (the behaviour users of Koala- and GoodFit-style integrations rely on):
//
//   - a company is indexed under its normalised `domain`; a company without a usable
//     `domain` is indexed under the domain of its `website`; every value of
//     `hs_additional_domains` is indexed too;
//   - normalisation strips scheme, path, port and a leading "www.", and nothing else:
//     every other subdomain stays distinct ("us.acme.com" is not "acme.com");
//   - free-mail domains (gmail.com, outlook.com, ...) are never indexed and never looked
//     up, so they can neither match nor create a company;
//   - an account's primary domain and all its aliases are looked up; when several
//     companies are found, the one with the most deals wins, then the most contacts,
//     then the most recently modified, then the lowest record id;
//   - a visitor matches a contact by exact email (case-insensitive), then by
//     `hs_additional_emails`.
package match

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/signalbridge/signalbridge/libs/domain"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
)

// HubSpot property names an answer can have matched on.
const (
	PropDomain            = "domain"
	PropWebsite           = "website"
	PropAdditionalDomains = "hs_additional_domains"
	PropEmail             = "email"
	PropAdditionalEmails  = "hs_additional_emails"
)

// Company is what matching needs to know about a HubSpot company.
type Company struct {
	ID          string
	Name        string
	OwnerID     string
	NumDeals    int // num_associated_deals
	NumContacts int // num_associated_contacts
	OpenDeals   int // associated deals not closed
	Modified    int64
}

// Contact is what matching needs to know about a HubSpot contact.
type Contact struct {
	ID      string
	OwnerID string
	// CompanyID is the contact's primary company (associatedcompanyid), if any.
	CompanyID string
	Modified  int64
}

// Entry is one index entry: a normalised domain (or email) and the property it came from.
type Entry struct {
	Key      string
	Property string
}

// propertyRank orders properties from the most to the least direct evidence.
func propertyRank(p string) int {
	switch p {
	case PropDomain, PropEmail:
		return 0
	case PropWebsite:
		return 1
	default:
		return 2
	}
}

// splitList splits a multi-value HubSpot string ("a.io;b.net", HubSpot's separator is
// ';', people also type ',' and spaces).
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ';' || r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
}

// CompanyEntries returns the index entries of a company from its raw `domain`,
// `website` and `hs_additional_domains` values: normalised, free-mail and invalid values
// dropped, each domain once (under its most direct property). The website counts only
// when `domain` is empty or not a valid domain.
func CompanyEntries(domainValue, website, additional string) []Entry {
	var out []Entry
	add := func(raw, prop string) bool {
		d, err := domain.Normalize(raw)
		if err != nil {
			return false
		}
		if domain.IsFreeMail(d) {
			return true // a valid domain, deliberately not indexed
		}
		if !slices.ContainsFunc(out, func(e Entry) bool { return e.Key == d }) {
			out = append(out, Entry{Key: d, Property: prop})
		}
		return true
	}
	hasDomain := strings.TrimSpace(domainValue) != "" && add(domainValue, PropDomain)
	if !hasDomain && strings.TrimSpace(website) != "" {
		add(website, PropWebsite)
	}
	for _, a := range splitList(additional) {
		add(a, PropAdditionalDomains)
	}
	return out
}

// ContactEntries returns the index entries of a contact from its raw `email` and
// `hs_additional_emails` values: normalised (lower case), invalid values dropped, each
// address once.
func ContactEntries(email, additional string) []Entry {
	var out []Entry
	add := func(raw, prop string) {
		e, _, err := domain.NormalizeEmail(raw)
		if err != nil {
			return
		}
		if !slices.ContainsFunc(out, func(x Entry) bool { return x.Key == e }) {
			out = append(out, Entry{Key: e, Property: prop})
		}
	}
	if strings.TrimSpace(email) != "" {
		add(email, PropEmail)
	}
	for _, a := range splitList(additional) {
		add(a, PropAdditionalEmails)
	}
	return out
}

// FieldError is an invalid value of a query, with the path of its field.
type FieldError struct {
	Field string // "domain", "aliases[2]", "email"
	Value string
	Err   error
}

// Error implements error.
func (e *FieldError) Error() string { return fmt.Sprintf("%s: %v", e.Field, e.Err) }

// Unwrap returns the cause (a domain package error).
func (e *FieldError) Unwrap() error { return e.Err }

// Account is a normalised account query.
type Account struct {
	// Domains are the domains to look up, primary first, then aliases; no repeats, no
	// free-mail domains.
	Domains []string
	// FreeMail are the query's free-mail domains, which are never looked up.
	FreeMail []string
}

// NormalizeAccount normalises an account's primary domain and aliases. Invalid values
// are reported (one FieldError each) and left out of the result.
func NormalizeAccount(primary string, aliases []string) (Account, []*FieldError) {
	return normalizeAccount(domain.Normalize, primary, aliases)
}

// DomainMemo remembers domain.Normalize's answers, valid or not, for up to max inputs
// (then it starts again empty). The signals of one account repeat its domains, and
// normalising a domain (IDNA mapping, Public Suffix List look-ups) costs more than
// matching it. It is safe for concurrent use.
type DomainMemo struct {
	max  int
	mu   sync.Mutex
	seen map[string]memoized
}

type memoized struct {
	d   string
	err error
}

// NewDomainMemo returns a DomainMemo of up to max inputs.
func NewDomainMemo(max int) *DomainMemo {
	return &DomainMemo{max: max, seen: make(map[string]memoized)}
}

// Normalize is domain.Normalize, remembered.
func (m *DomainMemo) Normalize(raw string) (string, error) {
	m.mu.Lock()
	r, ok := m.seen[raw]
	m.mu.Unlock()
	if ok {
		return r.d, r.err
	}
	r.d, r.err = domain.Normalize(raw)
	m.mu.Lock()
	if len(m.seen) >= m.max {
		clear(m.seen)
	}
	m.seen[raw] = r
	m.mu.Unlock()
	return r.d, r.err
}

// NormalizeAccount is the package's NormalizeAccount with remembered domains.
func (m *DomainMemo) NormalizeAccount(primary string, aliases []string) (Account, []*FieldError) {
	return normalizeAccount(m.Normalize, primary, aliases)
}

func normalizeAccount(normalize func(string) (string, error), primary string, aliases []string) (Account, []*FieldError) {
	var a Account
	var errs []*FieldError
	// field is the path of value i: the primary domain (-1) or aliases[i]; built only
	// for an error, as this runs for every signal.
	field := func(i int) string {
		if i < 0 {
			return "domain"
		}
		return fmt.Sprintf("aliases[%d]", i)
	}
	for i := -1; i < len(aliases); i++ {
		raw := primary
		if i >= 0 {
			raw = aliases[i]
		}
		if strings.TrimSpace(raw) == "" {
			if i >= 0 { // an account may have no primary domain, but not an empty alias
				errs = append(errs, &FieldError{Field: field(i), Value: raw, Err: domain.ErrEmpty})
			}
			continue
		}
		d, err := normalize(raw)
		if err != nil {
			errs = append(errs, &FieldError{Field: field(i), Value: raw, Err: err})
			continue
		}
		switch {
		case domain.IsFreeMail(d):
			if !slices.Contains(a.FreeMail, d) {
				a.FreeMail = append(a.FreeMail, d)
			}
		case !slices.Contains(a.Domains, d):
			a.Domains = append(a.Domains, d)
		}
	}
	return a, errs
}

// Hit is a company found under one looked-up domain, with the property of the entry.
type Hit struct {
	Company  Company
	Property string
}

// Evidence explains an answer.
type Evidence struct {
	MatchedKey   string // the domain or email that matched
	Property     string
	Rule         signalsv1.MatchRule
	TieBreak     signalsv1.TieBreak
	CandidateIDs []string // best first
}

// Proto returns the evidence as a MatchEvidence message.
func (e Evidence) Proto() *signalsv1.MatchEvidence {
	return &signalsv1.MatchEvidence{
		MatchedDomain:   e.MatchedKey,
		MatchedProperty: e.Property,
		Rule:            e.Rule,
		TieBreak:        e.TieBreak,
		CandidateIds:    e.CandidateIDs,
	}
}

// AccountResult is the answer for one account.
type AccountResult struct {
	// Company is nil when nothing matched; Unmatched then says why.
	Company   *Company
	Evidence  Evidence
	Unmatched signalsv1.UnmatchedReason
}

// Matched reports whether a company was found.
func (r AccountResult) Matched() bool { return r.Company != nil }

// Proto returns the match as a CompanyMatch message (nil when unmatched).
func (r AccountResult) Proto() *signalsv1.CompanyMatch {
	if r.Company == nil {
		return nil
	}
	c := r.Company
	return &signalsv1.CompanyMatch{
		CompanyId:     c.ID,
		Name:          c.Name,
		OwnerId:       c.OwnerID,
		OpenDealCount: clamp32(c.OpenDeals),
		ContactCount:  clamp32(c.NumContacts),
		Evidence:      r.Evidence.Proto(),
	}
}

func clamp32(n int) int32 { return int32(min(max(n, 0), 1<<31-1)) }

func companyRule(prop string) signalsv1.MatchRule {
	switch prop {
	case PropDomain:
		return signalsv1.MatchRule_MATCH_RULE_COMPANY_DOMAIN
	case PropWebsite:
		return signalsv1.MatchRule_MATCH_RULE_COMPANY_WEBSITE
	default:
		return signalsv1.MatchRule_MATCH_RULE_ADDITIONAL_DOMAIN
	}
}

// candidate is a company with the best way it was found.
type candidate struct {
	c        Company
	key      string
	prop     string
	position int // index of the query domain
}

// compareIDs orders HubSpot record ids numerically (they are decimal strings); other
// strings sort after numbers, lexicographically.
func compareIDs(a, b string) int {
	na, nb := isDigits(a), isDigits(b)
	switch {
	case na && nb:
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if c := cmp.Compare(len(a), len(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	case na:
		return -1
	case nb:
		return 1
	}
	return strings.Compare(a, b)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// tieBreak compares two companies by the tie-break chain (best first) and names the
// rule that decided.
func tieBreak(a, b Company) (int, signalsv1.TieBreak) {
	if c := cmp.Compare(b.NumDeals, a.NumDeals); c != 0 {
		return c, signalsv1.TieBreak_TIE_BREAK_MOST_DEALS
	}
	if c := cmp.Compare(b.NumContacts, a.NumContacts); c != 0 {
		return c, signalsv1.TieBreak_TIE_BREAK_MOST_CONTACTS
	}
	if c := cmp.Compare(b.Modified, a.Modified); c != 0 {
		return c, signalsv1.TieBreak_TIE_BREAK_MOST_RECENTLY_MODIFIED
	}
	return compareIDs(a.ID, b.ID), signalsv1.TieBreak_TIE_BREAK_LOWEST_ID
}

// ResolveAccount picks the company for a normalised account. hits[i] are the companies
// found under a.Domains[i] (hits may be shorter than a.Domains: missing means none).
// Every company found under any domain is a candidate; a company found several times
// keeps its most direct evidence (earliest query domain, then domain over website over
// additional domain). The winner is chosen by the tie-break chain.
func ResolveAccount(a Account, hits [][]Hit) AccountResult {
	if len(a.Domains) == 0 {
		if len(a.FreeMail) > 0 {
			return AccountResult{Unmatched: signalsv1.UnmatchedReason_UNMATCHED_REASON_FREE_MAIL_DOMAIN}
		}
		return AccountResult{Unmatched: signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_DOMAIN}
	}
	var buf [4]candidate // most accounts have one company; no allocation for a few
	cands := buf[:0]
	for i, d := range a.Domains {
		if i >= len(hits) {
			break
		}
		for _, h := range hits[i] {
			nc := candidate{c: h.Company, key: d, prop: h.Property, position: i}
			j := slices.IndexFunc(cands, func(x candidate) bool { return x.c.ID == h.Company.ID })
			if j < 0 {
				cands = append(cands, nc)
				continue
			}
			if better(nc, cands[j]) {
				cands[j] = nc
			}
		}
	}
	if len(cands) == 0 {
		return AccountResult{Unmatched: signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_COMPANY}
	}
	slices.SortFunc(cands, func(x, y candidate) int {
		c, _ := tieBreak(x.c, y.c)
		return c
	})
	ev := Evidence{
		MatchedKey: cands[0].key,
		Property:   cands[0].prop,
		Rule:       companyRule(cands[0].prop),
		TieBreak:   signalsv1.TieBreak_TIE_BREAK_NONE,
	}
	if len(cands) > 1 {
		_, ev.TieBreak = tieBreak(cands[0].c, cands[1].c)
	}
	ev.CandidateIDs = make([]string, len(cands))
	for i, c := range cands {
		ev.CandidateIDs[i] = c.c.ID
	}
	win := cands[0].c
	return AccountResult{Company: &win, Evidence: ev}
}

// better reports whether x is more direct evidence for the same company than y.
func better(x, y candidate) bool {
	if x.position != y.position {
		return x.position < y.position
	}
	return propertyRank(x.prop) < propertyRank(y.prop)
}

// ContactHit is a contact found under a looked-up email, with the property of the entry.
type ContactHit struct {
	Contact  Contact
	Property string
}

// ContactResult is the answer for one email address.
type ContactResult struct {
	// Contact is nil when nothing matched.
	Contact  *Contact
	Evidence Evidence
}

// Matched reports whether a contact was found.
func (r ContactResult) Matched() bool { return r.Contact != nil }

// Proto returns the match as a ContactMatch message (nil when unmatched).
func (r ContactResult) Proto() *signalsv1.ContactMatch {
	if r.Contact == nil {
		return nil
	}
	return &signalsv1.ContactMatch{ContactId: r.Contact.ID, OwnerId: r.Contact.OwnerID, Evidence: r.Evidence.Proto()}
}

// NormalizeEmail normalises a visitor's email for lookup.
func NormalizeEmail(raw string) (string, *FieldError) {
	e, _, err := domain.NormalizeEmail(raw)
	if err != nil {
		return "", &FieldError{Field: "email", Value: raw, Err: err}
	}
	return e, nil
}

// ResolveContact picks the contact for a normalised email from the contacts found under
// it: a contact whose `email` is the address beats one that lists it in
// `hs_additional_emails`; between equals the lowest record id wins.
func ResolveContact(email string, hits []ContactHit) ContactResult {
	if len(hits) == 0 {
		return ContactResult{}
	}
	hs := slices.Clone(hits)
	slices.SortFunc(hs, func(a, b ContactHit) int {
		if c := cmp.Compare(propertyRank(a.Property), propertyRank(b.Property)); c != 0 {
			return c
		}
		return compareIDs(a.Contact.ID, b.Contact.ID)
	})
	hs = slices.CompactFunc(hs, func(a, b ContactHit) bool { return a.Contact.ID == b.Contact.ID })
	ev := Evidence{
		MatchedKey: email,
		Property:   hs[0].Property,
		Rule:       contactRule(hs[0].Property),
		TieBreak:   signalsv1.TieBreak_TIE_BREAK_NONE,
	}
	if len(hs) > 1 && hs[1].Property == hs[0].Property {
		ev.TieBreak = signalsv1.TieBreak_TIE_BREAK_LOWEST_ID
	}
	for _, h := range hs {
		ev.CandidateIDs = append(ev.CandidateIDs, h.Contact.ID)
	}
	win := hs[0].Contact
	return ContactResult{Contact: &win, Evidence: ev}
}

func contactRule(prop string) signalsv1.MatchRule {
	if prop == PropEmail {
		return signalsv1.MatchRule_MATCH_RULE_CONTACT_EMAIL
	}
	return signalsv1.MatchRule_MATCH_RULE_CONTACT_ADDITIONAL_EMAIL
}

// ViaContact resolves an account through a matched contact's primary company, for
// signals whose account found no company. company is that primary company.
func ViaContact(contact ContactResult, company Company) AccountResult {
	if contact.Contact == nil || contact.Contact.CompanyID == "" || company.ID != contact.Contact.CompanyID {
		return AccountResult{Unmatched: signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_COMPANY}
	}
	return AccountResult{
		Company: &company,
		Evidence: Evidence{
			MatchedKey:   contact.Evidence.MatchedKey,
			Property:     contact.Evidence.Property,
			Rule:         contact.Evidence.Rule,
			TieBreak:     signalsv1.TieBreak_TIE_BREAK_NONE,
			CandidateIDs: []string{company.ID},
		},
	}
}
