package engine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mappingv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/mapping/v1"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

// Accounts is one portal's latest scores in compact columns (about 50 bytes per account plus
// the domain), loaded for one run and dropped after it.
type Accounts struct {
	domains  []byte   // every domain, back to back
	doff     []uint32 // domain i is domains[doff[i]:doff[i+1]]
	aliases  []byte   // raw alias sections (store.AliasList)
	aoff     []uint32
	packed   []uint64 // store.Values.Pack
	scoredAt []uint64 // Unix ms
	company  []uint64 // resolved HubSpot company id; 0 = unmatched
}

// LoadAccounts reads the portal's scores table into columns.
func LoadAccounts(ctx context.Context, t *store.Table, portal string) (*Accounts, error) {
	m, _, err := t.Manifest(ctx, portal)
	if err != nil {
		return nil, err
	}
	hint := int(min(m.Rows(), 50_000_000))
	a := &Accounts{
		domains: make([]byte, 0, hint*20), doff: make([]uint32, 1, hint+1),
		aoff: make([]uint32, 1, hint+1), packed: make([]uint64, 0, hint), scoredAt: make([]uint64, 0, hint),
	}
	err = t.Scan(ctx, portal, func(r store.Row) error {
		packed, section, err := store.DecodeScoreValue(r.Val)
		if err != nil {
			return fmt.Errorf("account %q: %w", r.Key, err)
		}
		if uint64(len(a.domains))+uint64(len(r.Key)) > math.MaxUint32 || uint64(len(a.aliases))+uint64(len(section)) > math.MaxUint32 {
			return errors.New("more accounts than one run can hold (4 GiB of domains)")
		}
		a.domains = append(a.domains, r.Key...)
		a.doff = append(a.doff, uint32(len(a.domains)))
		if len(section) > 1 || (len(section) == 1 && section[0] != 0) { // skip the common "no aliases"
			a.aliases = append(a.aliases, section...)
		}
		a.aoff = append(a.aoff, uint32(len(a.aliases)))
		a.packed = append(a.packed, packed)
		a.scoredAt = append(a.scoredAt, r.Ver)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load scores of portal %s: %w", portal, err)
	}
	a.company = make([]uint64, len(a.packed))
	return a, nil
}

// Len is the number of accounts.
func (a *Accounts) Len() int { return len(a.packed) }

func (a *Accounts) domain(i int) []byte { return a.domains[a.doff[i]:a.doff[i+1]] }

// Domain returns account i's domain.
func (a *Accounts) Domain(i int) string { return string(a.domain(i)) }

// Aliases returns account i's alias domains.
func (a *Accounts) Aliases(i int) []string {
	sec := a.aliases[a.aoff[i]:a.aoff[i+1]]
	if len(sec) == 0 {
		return nil
	}
	out, err := store.AliasList(sec)
	if err != nil {
		return nil
	}
	return out
}

// Values returns account i's values.
func (a *Accounts) Values(i int) store.Values { return store.UnpackValues(a.packed[i]) }

// Company returns the company id account i resolved to (0: unmatched).
func (a *Accounts) Company(i int) uint64 { return a.company[i] }

// SetCompany sets the company of account i (tests and benchmarks that skip Resolve).
func (a *Accounts) SetCompany(i int, id uint64) { a.company[i] = id }

// ResolveOptions tune Resolve.
type ResolveOptions struct {
	// Batch is the number of accounts per BatchResolveAccounts call (at most 1000).
	Batch int
	// Workers is the number of calls in flight.
	Workers int
	// Timeout bounds one call.
	Timeout time.Duration
	// Attempts bounds the tries of one call on Unavailable, DeadlineExceeded or ResourceExhausted.
	Attempts int
}

// ResolveStats counts the outcome of Resolve.
type ResolveStats struct {
	Matched, Unmatched int
	// ByReason counts unmatched accounts by reason ("NO_COMPANY", "invalid query", …).
	ByReason map[string]int
	// Calls is the number of MappingService calls made.
	Calls int
}

// Resolve asks the MappingService for every account's company.
func (a *Accounts) Resolve(ctx context.Context, client mappingv1.MappingServiceClient, portal string, o ResolveOptions) (ResolveStats, error) {
	if o.Batch <= 0 || o.Batch > 1000 {
		o.Batch = 1000
	}
	o.Workers = max(o.Workers, 1)
	o.Timeout = cmp.Or(o.Timeout, 30*time.Second)
	o.Attempts = max(o.Attempts, 1)
	n := a.Len()
	stats := ResolveStats{ByReason: map[string]int{}}
	if n == 0 {
		return stats, nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for range o.Workers {
		wg.Go(func() {
			local := ResolveStats{ByReason: map[string]int{}}
			for start := range next {
				if err := a.resolveChunk(ctx, client, portal, start, min(start+o.Batch, n), o, &local); err != nil {
					cancel(err)
				}
			}
			mu.Lock()
			stats.Matched += local.Matched
			stats.Unmatched += local.Unmatched
			stats.Calls += local.Calls
			for k, v := range local.ByReason {
				stats.ByReason[k] += v
			}
			mu.Unlock()
		})
	}
feed:
	for start := 0; start < n; start += o.Batch {
		select {
		case next <- start:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return stats, err
	}
	return stats, nil
}

func (a *Accounts) resolveChunk(ctx context.Context, client mappingv1.MappingServiceClient, portal string, start, end int, o ResolveOptions, st *ResolveStats) error {
	if ctx.Err() != nil {
		return nil
	}
	req := &mappingv1.BatchResolveAccountsRequest{PortalId: portal, Accounts: make([]*mappingv1.AccountQuery, 0, end-start)}
	for i := start; i < end; i++ {
		req.Accounts = append(req.Accounts, &mappingv1.AccountQuery{Domain: a.Domain(i), Aliases: a.Aliases(i)})
	}
	var resp *mappingv1.BatchResolveAccountsResponse
	var err error
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, o.Timeout)
		resp, err = client.BatchResolveAccounts(cctx, req)
		cancel()
		st.Calls++
		if err == nil || attempt >= o.Attempts || ctx.Err() != nil {
			break
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		default:
			return fmt.Errorf("resolve accounts %d..%d: %w", start, end-1, err)
		}
		t := time.NewTimer(time.Duration(attempt*attempt) * 200 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if err != nil {
		return fmt.Errorf("resolve accounts %d..%d: %w", start, end-1, err)
	}
	if len(resp.GetAnswers()) != end-start {
		return fmt.Errorf("resolve accounts %d..%d: %d answers for %d queries", start, end-1, len(resp.GetAnswers()), end-start)
	}
	for k, ans := range resp.GetAnswers() {
		i := start + k
		reason := ""
		switch {
		case ans.GetError() != "":
			reason = "invalid query"
		case ans.GetCompany() == nil:
			reason = ans.GetUnmatchedReason().String()
		default:
			id, perr := strconv.ParseUint(ans.GetCompany().GetCompanyId(), 10, 64)
			if perr != nil || id == 0 {
				reason = "company id is not a HubSpot record id"
			} else {
				a.company[i] = id
			}
		}
		if reason != "" {
			a.company[i] = 0
			st.Unmatched++
			st.ByReason[reason]++
			continue
		}
		st.Matched++
	}
	return nil
}

// Sent is what HubSpot last confirmed, per company, for one mapping fingerprint.
type Sent struct {
	ids    []uint64 // ascending
	packed []uint64
}

// Len is the number of companies with a confirmed state.
func (s *Sent) Len() int { return len(s.ids) }

// Lookup returns the confirmed values of a company.
func (s *Sent) Lookup(id uint64) (uint64, bool) {
	i, ok := slices.BinarySearch(s.ids, id)
	if !ok {
		return 0, false
	}
	return s.packed[i], true
}

// LoadSent reads the portal's sent table, keeping the rows written under fingerprint. It
// returns the number of rows of other fingerprints (a changed mapping) too.
func LoadSent(ctx context.Context, t *store.Table, portal string, fingerprint uint32) (*Sent, int, error) {
	m, _, err := t.Manifest(ctx, portal)
	if err != nil {
		return nil, 0, err
	}
	hint := int(min(m.Rows(), 50_000_000))
	s := &Sent{ids: make([]uint64, 0, hint), packed: make([]uint64, 0, hint)}
	stale := 0
	err = t.Scan(ctx, portal, func(r store.Row) error {
		row, err := store.DecodeSent(r)
		if err != nil {
			return err
		}
		if row.Fingerprint != fingerprint {
			stale++
			return nil
		}
		s.ids = append(s.ids, row.CompanyID)
		s.packed = append(s.packed, row.Packed)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("load sent state of portal %s: %w", portal, err)
	}
	return s, stale, nil
}

// NewSent builds a Sent from parallel slices (benchmarks); ids need not be sorted.
func NewSent(ids, packed []uint64) *Sent {
	idx := make([]int, len(ids))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(ids[a], ids[b]) })
	s := &Sent{ids: make([]uint64, len(ids)), packed: make([]uint64, len(ids))}
	for k, i := range idx {
		s.ids[k], s.packed[k] = ids[i], packed[i]
	}
	return s
}

// Change is one company to write: the winning account's values.
type Change struct {
	Company uint64
	Account uint32
	Packed  uint64
	// Differs is false only in full runs, for companies whose values HubSpot already has.
	Differs bool
}

// DiffStats counts what Diff saw.
type DiffStats struct {
	// Considered is the number of accounts; Unmatched those without a company.
	Considered, Unmatched int
	// Companies is the number of distinct companies matched; Superseded the accounts that
	// share a company with a more recently scored account (only that one is written).
	Companies, Superseded int
	// Changed is the number of companies whose values differ from the confirmed ones.
	Changed int
}

// Diff picks one account per company (the most recently scored; on a tie the smallest
// domain) and returns the companies to write, sorted by company id: those whose values differ
// from what HubSpot confirmed, or all of them when full.
func Diff(a *Accounts, sent *Sent, full bool) ([]Change, DiffStats) {
	st := DiffStats{Considered: a.Len()}
	idx := make([]uint32, 0, a.Len())
	for i, c := range a.company {
		if c == 0 {
			st.Unmatched++
			continue
		}
		idx = append(idx, uint32(i))
	}
	slices.SortFunc(idx, func(x, y uint32) int {
		if c := cmp.Compare(a.company[x], a.company[y]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.scoredAt[y], a.scoredAt[x]); c != 0 {
			return c // newest first
		}
		return bytes.Compare(a.domain(int(x)), a.domain(int(y)))
	})
	var changes []Change
	j := 0 // cursor in sent, which is sorted by id like idx
	for k, i := range idx {
		c := a.company[i]
		if k > 0 && a.company[idx[k-1]] == c {
			st.Superseded++
			continue
		}
		st.Companies++
		for j < len(sent.ids) && sent.ids[j] < c {
			j++
		}
		differs := j >= len(sent.ids) || sent.ids[j] != c || sent.packed[j] != a.packed[i]
		if differs {
			st.Changed++
		}
		if differs || full {
			changes = append(changes, Change{Company: c, Account: i, Packed: a.packed[i], Differs: differs})
		}
	}
	return changes, st
}
