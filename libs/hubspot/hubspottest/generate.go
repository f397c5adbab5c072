package hubspottest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// GenerateOptions sizes and shapes generated seed data.
type GenerateOptions struct {
	Companies          int
	ContactsPerCompany int
	DealsPerCompany    int
	// AliasRate is the share (0..1) of companies that get
	// hs_additional_domains aliases.
	AliasRate float64
	// DuplicateDomainRate is the share of companies that reuse the domain of
	// an earlier company (HubSpot allows duplicate company domains).
	DuplicateDomainRate float64
	// WebsiteOnlyRate is the share of companies with a website but no domain.
	WebsiteOnlyRate float64
	// Seed makes the data reproducible (0 behaves like 1).
	Seed int64
}

// GenerateResult lists the ids of generated records.
type GenerateResult struct {
	Companies []string
	Contacts  []string
	Deals     []string
}

var (
	genPrefixes = []string{"Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Cyberdyne",
		"Tyrell", "Wonka", "Aperture", "Massive", "Gringotts", "Oscorp", "Nakatomi", "Virtucon", "Pied", "Prestige",
		"Sirius", "Monarch", "Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware", "Adatum", "Proseware", "Woodgrove",
		"Blue", "Bright", "Summit", "Harbor", "Granite", "Cedar", "Falcon", "Orbit", "Quantum", "Vertex"}
	genNouns = []string{"Analytics", "Systems", "Labs", "Logistics", "Health", "Capital", "Robotics", "Foods", "Energy", "Software",
		"Networks", "Dynamics", "Security", "Media", "Bio", "Cloud", "Data", "Motors", "Retail", "Partners"}
	genSuffixes = []string{"Inc", "LLC", "GmbH", "Ltd", "Corp", "", "", ""}
	genTLDs     = []string{".com", ".com", ".com", ".com", ".io", ".co", ".net", ".de", ".co.uk"}
	genFirst    = []string{"Ava", "Liam", "Noah", "Emma", "Olivia", "Mia", "Lucas", "Sofia", "Ethan", "Amelia", "Mateo", "Chloe",
		"Leo", "Hannah", "Aria", "Jonas", "Elif", "Yuki", "Priya", "Omar", "Lena", "Ravi", "Nora", "Felix", "Ines", "Kai"}
	genLast = []string{"Smith", "Garcia", "Müller", "Rossi", "Nguyen", "Kim", "Patel", "Cohen", "Silva", "Novak", "Larsen",
		"Dubois", "Okafor", "Tanaka", "Schmidt", "Johnson", "Brown", "Lopez", "Hansen", "Wright", "Moreau", "Kowalski"}
	genTitles   = []string{"CEO", "CTO", "VP Sales", "Head of Marketing", "Data Engineer", "Account Executive", "Procurement Manager", "Product Manager", "CFO", "Operations Lead"}
	genProducts = []string{"Platform", "Analytics add-on", "Enterprise plan", "Onboarding", "Support renewal", "Data connector"}
	genRegions  = []string{"EMEA", "APAC", "US", "LATAM", "DACH", "Nordics"}
	genStages   = []string{"appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin", "contractsent", "closedwon", "closedlost"}
	genLifecyle = []string{"lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer"}
)

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

// Generate creates realistic companies, contacts and deals directly in the
// portal (no rate limits, no webhooks): names and domains, aliases in
// hs_additional_domains, some duplicate-domain companies, some companies with
// a website but no domain, contacts whose email matches the company domain
// (sometimes an alias), primary company associations and deals. Create and
// modify dates are spread over the past year.
func (p *Portal) Generate(o GenerateOptions) GenerateResult {
	seed := uint64(o.Seed)
	if seed == 0 {
		seed = 1
	}
	rng := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15+1))
	var res GenerateResult
	usedDomains := map[string]bool{}
	usedEmails := map[string]bool{}
	type company struct {
		id      int64
		name    string
		domain  string
		aliases []string
	}
	var made []company

	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.s.now()
	owners := p.owners
	stamp := func() (string, string) {
		created := now.Add(-time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
		modified := created.Add(time.Duration(rng.Int64N(int64(now.Sub(created)) + 1)))
		return formatTime(created), formatTime(modified)
	}
	owner := func() string {
		if len(owners) == 0 {
			return ""
		}
		return pick(rng, owners).ID
	}
	kCompanies, kContacts, kDeals := p.s.kindOf(Companies), p.s.kindOf(Contacts), p.s.kindOf(Deals)
	dealPrimary := p.s.atypes.primaries[[2]string{Deals, Companies}]
	dealContact := p.s.atypes.defaults[[2]string{Deals, Contacts}]

	type stamped struct {
		k        *objectKind
		r        *record
		modified string
	}
	for i := 0; i < o.Companies; i++ {
		var group []stamped
		prefix, noun := pick(rng, genPrefixes), pick(rng, genNouns)
		name := strings.TrimSpace(prefix + " " + noun + " " + pick(rng, genSuffixes))
		base := strings.ToLower(prefix + noun)
		domain := base + pick(rng, genTLDs)
		for n := 2; usedDomains[domain]; n++ {
			domain = base + strconv.Itoa(n) + pick(rng, genTLDs)
		}
		var aliases []string
		switch {
		case len(made) > 0 && rng.Float64() < o.DuplicateDomainRate:
			orig := made[rng.IntN(len(made))]
			if orig.domain != "" {
				domain = orig.domain
				name = orig.name + " (" + pick(rng, genRegions) + ")"
			}
		default:
			usedDomains[domain] = true
		}
		if rng.Float64() < o.AliasRate {
			for _, tld := range []string{".io", ".net", ".co"} {
				alias := strings.ToLower(prefix) + tld
				if !usedDomains[alias] && !strings.HasSuffix(domain, tld) {
					aliases = append(aliases, alias)
					usedDomains[alias] = true
				}
				if len(aliases) == 1+rng.IntN(2) {
					break
				}
			}
		}
		created, modified := stamp()
		props := map[string]string{
			"name":                name,
			"website":             "https://www." + domain,
			"industry":            pick(rng, industries),
			"numberofemployees":   strconv.Itoa(5 + rng.IntN(5000)),
			"annualrevenue":       strconv.Itoa((1 + rng.IntN(500)) * 100_000),
			"city":                pick(rng, []string{"Berlin", "London", "Austin", "Toronto", "Singapore", "Lyon", "Oslo", "Boston"}),
			"country":             pick(rng, []string{"Germany", "United Kingdom", "United States", "Canada", "Singapore", "France", "Norway"}),
			"hubspot_owner_id":    owner(),
			"createdate":          created,
			"hs_lastmodifieddate": modified,
		}
		if len(aliases) > 0 {
			props["hs_additional_domains"] = strings.Join(aliases, ";")
		}
		websiteOnly := rng.Float64() < o.WebsiteOnlyRate
		if !websiteOnly {
			props["domain"] = domain
		}
		rec := p.createLocked(p.stores[Companies], props, now, source{}, nil)
		group = append(group, stamped{kCompanies, rec, modified})
		c := company{id: rec.id, name: name, aliases: aliases}
		if !websiteOnly {
			c.domain = domain
		}
		made = append(made, c)
		res.Companies = append(res.Companies, strconv.FormatInt(rec.id, 10))

		emailDomain := domain
		var contactIDs []int64
		for j := 0; j < o.ContactsPerCompany; j++ {
			first, last := pick(rng, genFirst), pick(rng, genLast)
			d := emailDomain
			if len(aliases) > 0 && rng.IntN(5) == 0 {
				d = pick(rng, aliases)
			}
			local := asciiLower(first) + "." + asciiLower(last)
			email := local + "@" + d
			for n := 2; usedEmails[email]; n++ {
				email = local + strconv.Itoa(n) + "@" + d
			}
			usedEmails[email] = true
			created, modified := stamp()
			crec := p.createLocked(p.stores[Contacts], map[string]string{
				"email": email, "firstname": first, "lastname": last,
				"jobtitle": pick(rng, genTitles), "company": name, "website": "https://www." + domain,
				"lifecyclestage": pick(rng, genLifecyle), "hubspot_owner_id": owner(),
				"createdate": created, "lastmodifieddate": modified,
			}, now, source{}, nil)
			group = append(group, stamped{kContacts, crec, modified})
			p.associateLocked(kContacts, crec.id, kCompanies, rec.id, nil, now, source{}, nil)
			contactIDs = append(contactIDs, crec.id)
			res.Contacts = append(res.Contacts, strconv.FormatInt(crec.id, 10))
		}
		for j := 0; j < o.DealsPerCompany; j++ {
			created, modified := stamp()
			closeAt := now.Add(time.Duration(rng.Int64N(int64(360*24*time.Hour))) - 180*24*time.Hour)
			drec := p.createLocked(p.stores[Deals], map[string]string{
				"dealname":            fmt.Sprintf("%s - %s %d", name, pick(rng, genProducts), closeAt.Year()),
				"amount":              strconv.Itoa((10 + rng.IntN(2500)) * 100),
				"dealstage":           pick(rng, genStages),
				"pipeline":            "default",
				"closedate":           formatTime(closeAt),
				"hubspot_owner_id":    owner(),
				"createdate":          created,
				"hs_lastmodifieddate": modified,
			}, now, source{}, nil)
			group = append(group, stamped{kDeals, drec, modified})
			p.associateLocked(kDeals, drec.id, kCompanies, rec.id, []int{dealPrimary}, now, source{}, nil)
			if len(contactIDs) > 0 {
				p.associateLocked(kDeals, drec.id, kContacts, contactIDs[rng.IntN(len(contactIDs))], []int{dealContact}, now, source{}, nil)
			}
			res.Deals = append(res.Deals, strconv.FormatInt(drec.id, 10))
		}
		// Associating bumped the modified dates; restore the spread ones.
		for _, g := range group {
			p.settleLocked(g.k, g.r, g.modified)
		}
	}
	return res
}

// asciiLower folds a name into an email local part.
func asciiLower(s string) string {
	r := strings.NewReplacer("ü", "ue", "ö", "oe", "ä", "ae", "é", "e", "ß", "ss")
	return strings.ToLower(r.Replace(s))
}
