package hubspottest

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Fixtures is seed data in JSON, as read by the hubspot-sandbox -fixtures
// flag:
//
//	{"companies": [{"ref": "acme", "properties": {"name": "Acme", "domain": "acme.com"}}],
//	 "contacts":  [{"properties": {"email": "ana@acme.com"}, "associations": ["acme"]}],
//	 "deals":     [{"properties": {"dealname": "Acme renewal", "dealstage": "qualifiedtobuy", "pipeline": "default"}, "associations": ["acme"]}]}
//
// A record's associations name the refs of records created earlier or
// later in the file; each gets the default association (a contact's or
// deal's first company becomes its primary company).
type Fixtures struct {
	Companies []FixtureRecord `json:"companies"`
	Contacts  []FixtureRecord `json:"contacts"`
	Deals     []FixtureRecord `json:"deals"`
	Tasks     []FixtureRecord `json:"tasks"`
	Notes     []FixtureRecord `json:"notes"`
}

// FixtureRecord is one record of a Fixtures file.
type FixtureRecord struct {
	Ref          string            `json:"ref"`
	Properties   map[string]string `json:"properties"`
	Associations []string          `json:"associations"`
}

// LoadFixtures decodes a Fixtures document.
func LoadFixtures(r io.Reader) (Fixtures, error) {
	var f Fixtures
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Fixtures{}, fmt.Errorf("load fixtures: %w", err)
	}
	return f, nil
}

// ApplyFixtures seeds the portal with f (like Seed: no webhooks, no rate
// limits). It returns the id of every ref.
func (p *Portal) ApplyFixtures(f Fixtures) (map[string]string, error) {
	type created struct {
		objectType string
		id         string
	}
	refs := map[string]created{}
	type pending struct {
		from  created
		where string
		to    string
	}
	var links []pending
	groups := []struct {
		objectType string
		recs       []FixtureRecord
	}{{Companies, f.Companies}, {Contacts, f.Contacts}, {Deals, f.Deals}, {Tasks, f.Tasks}, {Notes, f.Notes}}
	for _, g := range groups {
		for i, rec := range g.recs {
			where := fmt.Sprintf("%s[%d]", g.objectType, i)
			if rec.Ref != "" {
				if _, dup := refs[rec.Ref]; dup {
					return nil, fmt.Errorf("apply fixtures: %s: ref %q is used twice", where, rec.Ref)
				}
			}
			ids := p.Seed(g.objectType, rec.Properties)
			if len(ids) != 1 {
				return nil, fmt.Errorf("apply fixtures: %s: could not create the record", where)
			}
			c := created{objectType: g.objectType, id: ids[0]}
			if rec.Ref != "" {
				refs[rec.Ref] = c
			}
			for j, to := range rec.Associations {
				links = append(links, pending{from: c, where: where + ".associations[" + strconv.Itoa(j) + "]", to: to})
			}
		}
	}
	for _, l := range links {
		to, ok := refs[l.to]
		if !ok {
			return nil, fmt.Errorf("apply fixtures: %s: unknown ref %q", l.where, l.to)
		}
		if err := p.Associate(l.from.objectType, l.from.id, to.objectType, to.id); err != nil {
			return nil, fmt.Errorf("apply fixtures: %s: %w", l.where, err)
		}
	}
	out := make(map[string]string, len(refs))
	for ref, c := range refs {
		out[ref] = c.id
	}
	return out, nil
}
