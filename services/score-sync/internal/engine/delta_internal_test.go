package engine

import (
	"fmt"
	"strings"
	"testing"
)

type acct struct {
	domain  string
	company uint64
	packed  uint64
	at      uint64
}

func accounts(list ...acct) *Accounts {
	a := &Accounts{doff: []uint32{0}, aoff: []uint32{0}}
	for _, x := range list {
		a.domains = append(a.domains, x.domain...)
		a.doff = append(a.doff, uint32(len(a.domains)))
		a.aoff = append(a.aoff, 0)
		a.packed = append(a.packed, x.packed)
		a.scoredAt = append(a.scoredAt, x.at)
		a.company = append(a.company, x.company)
	}
	return a
}

func render(a *Accounts, changes []Change) string {
	var out []string
	for _, c := range changes {
		s := fmt.Sprintf("%d:%s=%d", c.Company, a.Domain(int(c.Account)), c.Packed)
		if !c.Differs {
			s += "(same)"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func TestDiff(t *testing.T) {
	t.Parallel()
	a := accounts(
		acct{"c.com", 30, 3, 100},
		acct{"unmatched.com", 0, 9, 100},
		acct{"a.com", 10, 1, 100},
		acct{"b-old.com", 20, 7, 50},
		acct{"b-new.com", 20, 2, 60}, // newest of company 20 wins
		acct{"z-tie.com", 40, 5, 70}, // same scored_at as y-tie: the smaller domain wins
		acct{"y-tie.com", 40, 4, 70},
		acct{"d.com", 50, 6, 100},
	)
	cases := []struct {
		name      string
		sent      *Sent
		full      bool
		want      string
		changed   int
		companies int
	}{
		{"nothing sent yet", NewSent(nil, nil), false,
			"10:a.com=1 20:b-new.com=2 30:c.com=3 40:y-tie.com=4 50:d.com=6", 5, 5},
		{"delta skips confirmed values", NewSent([]uint64{30, 10, 40, 99}, []uint64{3, 1, 5, 0}), false,
			"20:b-new.com=2 40:y-tie.com=4 50:d.com=6", 3, 5},
		{"full sends all, marking the unchanged", NewSent([]uint64{30, 10}, []uint64{3, 8}), true,
			"10:a.com=1 20:b-new.com=2 30:c.com=3(same) 40:y-tie.com=4 50:d.com=6", 4, 5},
		{"everything confirmed", NewSent([]uint64{10, 20, 30, 40, 50}, []uint64{1, 2, 3, 4, 6}), false, "", 0, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			changes, st := Diff(a, tc.sent, tc.full)
			if got := render(a, changes); got != tc.want {
				t.Fatalf("changes %q, want %q", got, tc.want)
			}
			if st.Considered != 8 || st.Unmatched != 1 || st.Superseded != 2 || st.Companies != tc.companies || st.Changed != tc.changed {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestSentLookup(t *testing.T) {
	t.Parallel()
	s := NewSent([]uint64{5, 1, 3}, []uint64{50, 10, 30})
	for _, tc := range []struct {
		id   uint64
		want uint64
		ok   bool
	}{{1, 10, true}, {3, 30, true}, {5, 50, true}, {2, 0, false}, {6, 0, false}} {
		if got, ok := s.Lookup(tc.id); got != tc.want || ok != tc.ok {
			t.Errorf("Lookup(%d) = %d, %v", tc.id, got, ok)
		}
	}
}
