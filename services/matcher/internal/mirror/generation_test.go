package mirror_test

import (
	"context"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/redisx"
	"github.com/signalbridge/signalbridge/services/matcher/internal/match"
	"github.com/signalbridge/signalbridge/services/matcher/internal/mirror"
)

// Every write that changes a look-up answer moves the portal's generation, in the
// family it belongs to; writes that change nothing leave it alone.
func TestGenerationMovesWithEveryWriteThatChangesAnAnswer(t *testing.T) {
	t.Parallel()
	s, portal := newStore(t)
	ctx := context.Background()
	gen := func() mirror.Generation {
		t.Helper()
		g, err := s.Generation(ctx, portal)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	last := gen()
	if last.Epoch == "" || last.Companies != 0 || last.Contacts != 0 {
		t.Fatalf("generation of a new portal = %+v, want an epoch and zero counters", last)
	}
	step := func(what string, write func() error, companies, contacts int64) {
		t.Helper()
		if err := write(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		g := gen()
		want := mirror.Generation{Epoch: last.Epoch, Companies: last.Companies + companies, Contacts: last.Contacts + contacts}
		if g != want {
			t.Fatalf("after %s: generation %+v, want %+v", what, g, want)
		}
		last = g
	}
	putCompany := func(c mirror.CompanyRecord) func() error {
		return func() error { _, err := s.PutCompanies(ctx, portal, []mirror.CompanyRecord{c}); return err }
	}
	step("a new company", putCompany(company("1", 100, "acme.com", "", "")), 1, 0)
	step("the same company again", putCompany(company("1", 100, "acme.com", "", "")), 0, 0)
	step("an older copy", putCompany(company("1", 50, "old.com", "", "")), 0, 0)
	step("a changed domain", putCompany(company("1", 200, "acme.io", "", "")), 1, 0)
	step("an open deal of the company", func() error {
		_, err := s.PutDeals(ctx, portal, []mirror.DealRecord{{ID: "10", Open: true, Companies: []string{"1"}, Modified: 1}})
		return err
	}, 1, 0)
	step("a contact", func() error {
		_, err := s.PutContacts(ctx, portal, []mirror.ContactRecord{{
			Contact: match.Contact{ID: "7", CompanyID: "1", Modified: 1},
			Entries: []match.Entry{{Key: "ann@acme.io", Property: match.PropEmail}},
		}})
		return err
	}, 0, 1)
	step("the contact's deletion", func() error {
		_, err := s.Delete(ctx, portal, mirror.Contacts, []string{"7"}, time.UnixMilli(2))
		return err
	}, 0, 1)
	step("a deletion of what is not there", func() error {
		_, err := s.Delete(ctx, portal, mirror.Companies, []string{"404"}, time.UnixMilli(2))
		return err
	}, 0, 0)
	step("a negative answer", func() error {
		return s.CacheNegative(ctx, portal, mirror.Companies, []string{"nobody.com"}, time.Minute)
	}, 0, 0)
	step("the company's deletion", func() error {
		_, err := s.Delete(ctx, portal, mirror.Companies, []string{"1"}, time.UnixMilli(300))
		return err
	}, 1, 0)

	// A Redis that lost the portal's keys (restart without persistence, flush) hands
	// out a new epoch, so counters that start again from zero are not taken for the old.
	if err := s.Client().Del(ctx, redisx.Key(portal, "gen")).Err(); err != nil {
		t.Fatal(err)
	}
	if g := gen(); g.Epoch == last.Epoch || g.Companies != 0 {
		t.Fatalf("after the generation was lost: %+v, want a new epoch (was %q)", g, last.Epoch)
	}
}
