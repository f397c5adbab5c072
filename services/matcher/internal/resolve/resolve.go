// Package resolve answers account and contact look-ups for one portal: from the Redis
// mirror first; on a miss from HubSpot, with the misses of concurrent requests
// coalesced (`domain IN [...]` searches of up to 100 domains, batch reads of up to 100
// emails, one flight per key); negative answers are cached for a short TTL and dropped
// as soon as a change event adds the key to the mirror. When Redis is down, answers come
// straight from HubSpot through the quota governor, with a small in-process cache.
package resolve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/services/matcher/internal/batch"
	"github.com/signalbridge/signalbridge/services/matcher/internal/match"
	"github.com/signalbridge/signalbridge/services/matcher/internal/mirror"
)

// ErrNoClient wraps the error of a portal without a usable HubSpot client (unknown
// portal, missing secret): its misses cannot be looked up in HubSpot.
var ErrNoClient = errors.New("no hubspot client for the portal")

// MaxSearchValues is the most values of one `IN` filter the resolver sends.
const MaxSearchValues = 100

// Options configure a Resolver.
type Options struct {
	// NegativeTTL is how long "HubSpot has no company for this domain" (or no contact
	// for this email) is believed (default 2m).
	NegativeTTL time.Duration
	// SearchMirroredMisses also asks HubSpot about domains and emails missing from the
	// mirror of a portal whose full read completed (default false: the mirror, kept
	// current by webhooks and hourly reads, is the answer). Portals not yet mirrored are
	// always asked.
	SearchMirroredMisses bool
	// Linger is how long a miss waits for others to share its HubSpot call (default 10ms).
	Linger time.Duration
	// MissWait bounds how long a look-up waits for HubSpot (default 5s). Past it, a
	// mirrored portal gets the mirror's answer (the HubSpot call goes on, and its answer
	// is cached for the next look-up); a portal not mirrored yet gets an error. This keeps
	// a slow or rate-limited portal from holding up everything else.
	MissWait time.Duration
	// FetchConcurrency bounds HubSpot calls in flight for misses (default 8).
	FetchConcurrency int
	// LocalTTL and LocalMax shape the in-process cache used while Redis is down
	// (defaults 1m and 100,000 keys).
	LocalTTL time.Duration
	LocalMax int
	// WarmMax bounds the in-process copy of the mirror's answers, kept while Redis is up
	// and checked against the portal's mirror generation on every look-up (default
	// 200,000 domains and emails; negative turns it off).
	WarmMax int
	Logger  *slog.Logger
}

// Stats count the resolver's HubSpot work.
type Stats struct {
	SearchCalls    int64 // company searches sent (pages)
	BatchReadCalls int64 // contact batch reads sent
	DomainsFetched int64 // domains looked up in HubSpot
	EmailsFetched  int64 // emails looked up in HubSpot
	FetchErrors    int64 // failed HubSpot look-ups
	RedisErrors    int64 // failed Redis calls
	WarmHits       int64 // domains and emails answered from the in-process copy of the mirror
	WarmEntries    int   // domains and emails in that copy now
}

// Resolver answers look-ups. It is safe for concurrent use.
type Resolver struct {
	store   *mirror.Store
	health  *Health
	clients mirror.ClientFunc
	opts    Options
	log     *slog.Logger
	domains *batch.Batcher[string, []match.Hit]
	emails  *batch.Batcher[string, []match.ContactHit]
	local   *localCache
	warm    *warmCache

	searchCalls, batchReads, domainsFetched, emailsFetched, fetchErrors, redisErrors, warmHits atomic.Int64
}

// New returns a Resolver. store and health may be nil (no Redis at all).
func New(store *mirror.Store, health *Health, clients mirror.ClientFunc, opts Options) *Resolver {
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = 2 * time.Minute
	}
	if opts.Linger <= 0 {
		opts.Linger = 10 * time.Millisecond
	}
	if opts.MissWait <= 0 {
		opts.MissWait = 5 * time.Second
	}
	if opts.FetchConcurrency <= 0 {
		opts.FetchConcurrency = 8
	}
	if opts.LocalTTL <= 0 {
		opts.LocalTTL = time.Minute
	}
	if opts.LocalMax <= 0 {
		opts.LocalMax = 100_000
	}
	if opts.WarmMax == 0 {
		opts.WarmMax = 200_000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Resolver{store: store, health: health, clients: clients, opts: opts, log: opts.Logger,
		local: newLocalCache(opts.LocalTTL, opts.LocalMax), warm: newWarmCache(opts.WarmMax)}
	interactive := func(ctx context.Context) context.Context { return hubspot.WithClass(ctx, quota.Interactive) }
	bo := batch.Options{Max: MaxSearchValues, Linger: opts.Linger, Concurrency: opts.FetchConcurrency, Context: interactive}
	r.domains = batch.New(r.fetchDomains, bo)
	bo.Max = hubspot.MaxBatchSize
	r.emails = batch.New(r.fetchEmails, bo)
	return r
}

// Stats returns the counters so far.
func (r *Resolver) Stats() Stats {
	return Stats{
		SearchCalls: r.searchCalls.Load(), BatchReadCalls: r.batchReads.Load(),
		DomainsFetched: r.domainsFetched.Load(), EmailsFetched: r.emailsFetched.Load(),
		FetchErrors: r.fetchErrors.Load(), RedisErrors: r.redisErrors.Load(),
		WarmHits: r.warmHits.Load(), WarmEntries: r.warm.size(),
	}
}

// Degraded reports whether Redis is down (answers come straight from HubSpot).
func (r *Resolver) Degraded() bool { return r.store == nil || !r.health.Up() }

func (r *Resolver) redisUp() bool { return r.store != nil && r.health.Up() }

func (r *Resolver) redisFailed(ctx context.Context, err error) {
	r.redisErrors.Add(1)
	if r.health != nil {
		r.health.Fail(ctx, err)
	}
}

// Query is one look-up: a normalised account, an email, or both (a signal).
type Query struct {
	Account match.Account
	// Email is a normalised email address, or "".
	Email string
}

// Answer is the answer to one Query.
type Answer struct {
	Account match.AccountResult
	Contact match.ContactResult
}

// Resolve answers queries of one portal. With both an account and an email, an account
// that finds no company is resolved through the contact's primary company. The error is
// for the whole call: HubSpot could not be asked about a portal that is not mirrored
// yet (transient; ask again later).
func (r *Resolver) Resolve(ctx context.Context, portal string, qs []Query) ([]Answer, error) {
	var domains, emails []string
	seenD, seenE := make(map[string]bool, len(qs)), map[string]bool{}
	for _, q := range qs {
		for _, d := range q.Account.Domains {
			if !seenD[d] {
				seenD[d] = true
				domains = append(domains, d)
			}
		}
		if q.Email != "" && !seenE[q.Email] {
			seenE[q.Email] = true
			emails = append(emails, q.Email)
		}
	}

	companyHits := make(map[string][]match.Hit, len(domains))
	contactHits := make(map[string][]match.ContactHit, len(emails))
	ready := false
	if r.redisUp() {
		var err error
		ready, err = r.lookupWarm(ctx, portal, domains, emails, companyHits, contactHits)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			r.redisFailed(ctx, err)
		}
	}
	if !r.redisUp() {
		r.local.fill(portal, domains, emails, companyHits, contactHits)
	}

	var unknownD, unknownE []string
	if !ready || r.opts.SearchMirroredMisses {
		for _, d := range domains {
			if _, ok := companyHits[d]; !ok {
				unknownD = append(unknownD, d)
			}
		}
		for _, e := range emails {
			if _, ok := contactHits[e]; !ok {
				unknownE = append(unknownE, e)
			}
		}
	}
	notMirrored, err := r.fetchMisses(ctx, portal, ready, unknownD, unknownE, companyHits, contactHits)
	if err != nil {
		return nil, err
	}

	answers := make([]Answer, len(qs))
	var via []int // answers to resolve through the contact's company
	total := 0
	for _, q := range qs {
		total += len(q.Account.Domains)
	}
	all := make([][]match.Hit, total) // every query's hits, one allocation for the batch
	for i, q := range qs {
		hits := all[:len(q.Account.Domains):len(q.Account.Domains)]
		all = all[len(q.Account.Domains):]
		unknown := false
		for j, d := range q.Account.Domains {
			h, ok := companyHits[d]
			hits[j] = h
			unknown = unknown || !ok
		}
		answers[i].Account = match.ResolveAccount(q.Account, hits)
		if !answers[i].Account.Matched() && unknown && notMirrored &&
			answers[i].Account.Unmatched == signalsv1.UnmatchedReason_UNMATCHED_REASON_NO_COMPANY {
			answers[i].Account.Unmatched = signalsv1.UnmatchedReason_UNMATCHED_REASON_PORTAL_NOT_MIRRORED
		}
		if q.Email != "" {
			answers[i].Contact = match.ResolveContact(q.Email, contactHits[q.Email])
		}
		if !answers[i].Account.Matched() && answers[i].Contact.Matched() && answers[i].Contact.Contact.CompanyID != "" {
			via = append(via, i)
		}
	}
	if len(via) > 0 && r.redisUp() {
		ids := make([]string, 0, len(via))
		for _, i := range via {
			ids = append(ids, answers[i].Contact.Contact.CompanyID)
		}
		recs, err := r.store.Companies(ctx, portal, ids)
		if err != nil {
			r.redisFailed(ctx, err)
		}
		for _, i := range via {
			if rec, ok := recs[answers[i].Contact.Contact.CompanyID]; ok {
				answers[i].Account = match.ViaContact(answers[i].Contact, rec.Company)
			}
		}
	}
	return answers, nil
}

// lookupWarm fills the hits of domains and emails from the in-process cache, checked
// against the portal's mirror generation, and from the mirror for the keys the cache
// lacks. Ready is only known when the mirror was asked; when every key was in the cache
// there is nothing left for it to decide.
func (r *Resolver) lookupWarm(ctx context.Context, portal string, domains, emails []string,
	companyHits map[string][]match.Hit, contactHits map[string][]match.ContactHit) (bool, error) {
	if r.warm.max <= 0 {
		return r.lookupMirror(ctx, portal, domains, emails, companyHits, contactHits)
	}
	gen, err := r.store.Generation(ctx, portal)
	if err != nil {
		return false, err
	}
	missD, missE := r.warm.lookup(portal, gen, domains, emails, companyHits, contactHits)
	r.warmHits.Add(int64(len(domains) + len(emails) - len(missD) - len(missE)))
	if len(missD)+len(missE) == 0 {
		return false, nil
	}
	ready, err := r.lookupMirror(ctx, portal, missD, missE, companyHits, contactHits)
	if err != nil {
		return false, err
	}
	r.warm.put(portal, gen, missD, missE, companyHits, contactHits)
	return ready, nil
}

// lookupMirror reads domains and emails from the mirror in one round trip and fills the
// hits of every key the mirror knows (negative answers as empty hit lists).
func (r *Resolver) lookupMirror(ctx context.Context, portal string, domains, emails []string,
	companyHits map[string][]match.Hit, contactHits map[string][]match.ContactHit) (bool, error) {
	ld, le := mirror.LookupDomains(domains), mirror.LookupEmails(emails)
	if err := r.store.Run(ctx, portal, ld, le); err != nil {
		return false, err
	}
	readyD, dres, err := ld.Domains()
	if err != nil {
		return false, err
	}
	readyE, eres, err := le.Emails()
	if err != nil {
		return false, err
	}
	for i, d := range domains {
		if dres[i].Known {
			companyHits[d] = nonNil(dres[i].Hits)
		}
	}
	for i, e := range emails {
		if eres[i].Known {
			contactHits[e] = nonNil(eres[i].Hits)
		}
	}
	return readyD || readyE, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// fetchMisses asks HubSpot about unknown domains and emails and fills their hits. A
// failure for a mirrored portal falls back to the mirror's answer (nothing); for a portal
// not mirrored it is returned, except a missing client, which is reported as notMirrored.
func (r *Resolver) fetchMisses(ctx context.Context, portal string, ready bool, domains, emails []string,
	companyHits map[string][]match.Hit, contactHits map[string][]match.ContactHit) (notMirrored bool, err error) {
	if len(domains) == 0 && len(emails) == 0 {
		return false, nil
	}
	var (
		wg         sync.WaitGroup
		foundD     map[string][]match.Hit
		foundE     map[string][]match.ContactHit
		errD, errE error
	)
	wctx, cancel := context.WithTimeout(ctx, r.opts.MissWait)
	defer cancel()
	if len(domains) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			foundD, errD = r.domains.Get(wctx, portal, domains)
		}()
	}
	if len(emails) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			foundE, errE = r.emails.Get(wctx, portal, emails)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	for _, e := range []error{errD, errE} {
		switch {
		case e == nil:
		case ready:
			r.log.Warn("hubspot look-up failed; answering from the mirror", "portal", portal, "err", e)
		case errors.Is(e, ErrNoClient):
			notMirrored = true
		default:
			return false, fmt.Errorf("resolve: portal %s is not mirrored yet and hubspot failed: %w", portal, e)
		}
	}
	if errD == nil {
		for _, d := range domains {
			companyHits[d] = nonNil(foundD[d])
		}
	}
	if errE == nil {
		for _, e := range emails {
			contactHits[e] = nonNil(foundE[e])
		}
	}
	return notMirrored, nil
}

// fetchDomains is the batch fetch of domains: one search (paged when more than a page
// matches) with `domain IN [...]` OR `hs_additional_domains IN [...]`. Every company
// returned is written to the mirror (the store keeps the newest copy); domains without
// a company get a negative answer.
func (r *Resolver) fetchDomains(ctx context.Context, portal string, domains []string) (map[string][]match.Hit, error) {
	hc, err := r.clients(portal)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoClient, err)
	}
	r.domainsFetched.Add(int64(len(domains)))
	want := make(map[string]bool, len(domains))
	for _, d := range domains {
		want[d] = true
	}
	req := hubspot.SearchRequest{
		FilterGroups: []hubspot.FilterGroup{
			{Filters: []hubspot.Filter{{PropertyName: "domain", Operator: hubspot.OpIn, Values: domains}}},
			{Filters: []hubspot.Filter{{PropertyName: "hs_additional_domains", Operator: hubspot.OpIn, Values: domains}}},
		},
		Properties: mirror.CompanyProperties(),
		Limit:      hubspot.MaxSearchLimit,
	}
	out := map[string][]match.Hit{}
	var recs []mirror.CompanyRecord
	for {
		r.searchCalls.Add(1)
		page, err := hc.Search(ctx, hubspot.Companies, req)
		if err != nil {
			r.fetchErrors.Add(1)
			return nil, fmt.Errorf("resolve: search %d domains: %w", len(domains), err)
		}
		for _, o := range page.Results {
			rec := mirror.CompanyFrom(o)
			recs = append(recs, rec)
			for _, e := range rec.Entries {
				if want[e.Key] {
					out[e.Key] = append(out[e.Key], match.Hit{Company: rec.Company, Property: e.Property})
				}
			}
		}
		if req.After = page.Paging.NextAfter(); req.After == "" {
			break
		}
	}
	var negative []string
	for _, d := range domains {
		if _, ok := out[d]; !ok {
			negative = append(negative, d)
		}
	}
	if r.redisUp() {
		_, err := r.store.PutCompanies(ctx, portal, recs)
		if err == nil {
			err = r.store.CacheNegative(ctx, portal, mirror.Companies, negative, r.opts.NegativeTTL)
		}
		if err != nil {
			r.redisFailed(ctx, err)
		}
	}
	if !r.redisUp() {
		r.local.putDomains(portal, domains, out)
	}
	return out, nil
}

// fetchEmails is the batch fetch of emails: one batch read of contacts by email.
func (r *Resolver) fetchEmails(ctx context.Context, portal string, emails []string) (map[string][]match.ContactHit, error) {
	hc, err := r.clients(portal)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoClient, err)
	}
	r.emailsFetched.Add(int64(len(emails)))
	r.batchReads.Add(1)
	res, err := hc.BatchRead(ctx, hubspot.Contacts, hubspot.BatchReadRequest{IDs: emails, IDProperty: "email", Properties: mirror.ContactProperties()})
	if err != nil {
		r.fetchErrors.Add(1)
		return nil, fmt.Errorf("resolve: batch read %d contacts by email: %w", len(emails), err)
	}
	out := map[string][]match.ContactHit{}
	var recs []mirror.ContactRecord
	for _, o := range res.Results {
		if o.Archived {
			continue
		}
		rec := mirror.ContactFrom(o)
		recs = append(recs, rec)
		for _, e := range rec.Entries {
			if slices.Contains(emails, e.Key) {
				out[e.Key] = append(out[e.Key], match.ContactHit{Contact: rec.Contact, Property: e.Property})
			}
		}
	}
	var negative []string
	for _, e := range emails {
		if _, ok := out[e]; !ok {
			negative = append(negative, e)
		}
	}
	if r.redisUp() {
		_, err := r.store.PutContacts(ctx, portal, recs)
		if err == nil {
			err = r.store.CacheNegative(ctx, portal, mirror.Contacts, negative, r.opts.NegativeTTL)
		}
		if err != nil {
			r.redisFailed(ctx, err)
		}
	}
	if !r.redisUp() {
		r.local.putEmails(portal, emails, out)
	}
	return out, nil
}

// localCache holds HubSpot answers in process while Redis is down.
type localCache struct {
	ttl time.Duration
	max int

	mu       sync.Mutex
	domains  map[string]localEntry[[]match.Hit]
	contacts map[string]localEntry[[]match.ContactHit]
}

type localEntry[T any] struct {
	hits    T
	expires time.Time
}

func newLocalCache(ttl time.Duration, maxKeys int) *localCache {
	return &localCache{ttl: ttl, max: maxKeys,
		domains: map[string]localEntry[[]match.Hit]{}, contacts: map[string]localEntry[[]match.ContactHit]{}}
}

func (c *localCache) fill(portal string, domains, emails []string, companyHits map[string][]match.Hit, contactHits map[string][]match.ContactHit) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range domains {
		if e, ok := c.domains[portal+"\x00"+d]; ok && now.Before(e.expires) {
			companyHits[d] = e.hits
		}
	}
	for _, m := range emails {
		if e, ok := c.contacts[portal+"\x00"+m]; ok && now.Before(e.expires) {
			contactHits[m] = e.hits
		}
	}
}

func (c *localCache) putDomains(portal string, domains []string, found map[string][]match.Hit) {
	exp := time.Now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.domains)+len(domains) > c.max {
		clear(c.domains) // crude but bounded; Redis outages are short
	}
	for _, d := range domains {
		c.domains[portal+"\x00"+d] = localEntry[[]match.Hit]{nonNil(found[d]), exp}
	}
}

func (c *localCache) putEmails(portal string, emails []string, found map[string][]match.ContactHit) {
	exp := time.Now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.contacts)+len(emails) > c.max {
		clear(c.contacts)
	}
	for _, e := range emails {
		c.contacts[portal+"\x00"+e] = localEntry[[]match.ContactHit]{nonNil(found[e]), exp}
	}
}
