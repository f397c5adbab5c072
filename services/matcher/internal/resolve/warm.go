package resolve

import (
	"sync"

	"github.com/signalbridge/signalbridge/services/matcher/internal/match"
	"github.com/signalbridge/signalbridge/services/matcher/internal/mirror"
)

// warmCache keeps the mirror's positive answers (domains and emails with hits) in process,
// so that a look-up of a known key costs a map read instead of a Redis script. Every
// entry belongs to the mirror generation it was read under; a look-up first reads the
// portal's generation from Redis (one small round trip) and drops the entries of a
// generation that has moved on. Company entries follow company and deal writes, contact
// entries contact writes, so a busy contact sync does not empty the company entries.
// Negative answers are not kept: they expire in Redis, and the mirror answers them.
type warmCache struct {
	max int // most entries across portals; 0 turns the cache off

	mu      sync.Mutex
	n       int
	portals map[string]*warmPortal
}

type warmPortal struct {
	gen     mirror.Generation
	domains map[string][]match.Hit
	emails  map[string][]match.ContactHit
}

func newWarmCache(maxKeys int) *warmCache {
	return &warmCache{max: maxKeys, portals: map[string]*warmPortal{}}
}

// lookup moves the portal's entries to gen (dropping those of an older generation), fills
// the hits of the keys it holds and returns the keys it does not.
func (c *warmCache) lookup(portal string, gen mirror.Generation, domains, emails []string,
	companyHits map[string][]match.Hit, contactHits map[string][]match.ContactHit) (missD, missE []string) {
	if c.max <= 0 {
		return domains, emails
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.portals[portal]
	if p == nil {
		p = &warmPortal{gen: gen, domains: map[string][]match.Hit{}, emails: map[string][]match.ContactHit{}}
		c.portals[portal] = p
	}
	if p.gen.Epoch != gen.Epoch || p.gen.Companies != gen.Companies {
		c.n -= len(p.domains)
		clear(p.domains)
	}
	if p.gen.Epoch != gen.Epoch || p.gen.Contacts != gen.Contacts {
		c.n -= len(p.emails)
		clear(p.emails)
	}
	p.gen = gen
	return fillHits(p.domains, domains, companyHits), fillHits(p.emails, emails, contactHits)
}

// fillHits copies the hits of the keys held in kept into hits and returns the
// keys not held.
func fillHits[H any](kept map[string][]H, keys []string, hits map[string][]H) (missing []string) {
	for _, k := range keys {
		if h, ok := kept[k]; ok {
			hits[k] = h
		} else {
			missing = append(missing, k)
		}
	}
	return missing
}

// put keeps the hits of domains and emails read from the mirror under gen. Nothing is
// kept when the portal has moved to another generation meanwhile. Past max entries the
// cache starts again empty: crude, but bounded, and refilled by the next look-ups.
func (c *warmCache) put(portal string, gen mirror.Generation, domains, emails []string,
	companyHits map[string][]match.Hit, contactHits map[string][]match.ContactHit) {
	if c.max <= 0 || len(domains)+len(emails) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.portals[portal]
	if p == nil || p.gen != gen {
		return
	}
	if c.n+len(domains)+len(emails) > c.max {
		for _, q := range c.portals {
			clear(q.domains)
			clear(q.emails)
		}
		c.n = 0
	}
	c.n += keepHits(p.domains, domains, companyHits) + keepHits(p.emails, emails, contactHits)
}

// keepHits stores in kept the keys that have hits and returns how many
// entries it added.
func keepHits[H any](kept map[string][]H, keys []string, hits map[string][]H) (added int) {
	for _, k := range keys {
		if h := hits[k]; len(h) > 0 {
			if _, ok := kept[k]; !ok {
				added++
			}
			kept[k] = h
		}
	}
	return added
}

// size is the number of entries held.
func (c *warmCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
