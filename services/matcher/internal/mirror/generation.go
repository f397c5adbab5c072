package mirror

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
)

// Fields of the generation hash (see scripts.go).
const (
	genEpoch     = "e"
	genCompanies = "c"
	genContacts  = "p"
)

// Generation says which state of a portal's mirror look-ups answer from. Answers read
// under one Generation stay true while the portal's Generation is the same: every write
// that changes an answer bumps it, atomically with the write.
type Generation struct {
	// Epoch is set once per Redis dataset: a Redis that restarted empty or was flushed
	// gets a new one, so counters that start again from zero are not taken for the old.
	Epoch string
	// Companies counts company and deal writes that changed look-up answers.
	Companies int64
	// Contacts counts contact writes that changed look-up answers.
	Contacts int64
}

// Generation reads the portal's generation in one round trip, giving the portal an epoch
// first if it has none.
func (s *Store) Generation(ctx context.Context, portal string) (Generation, error) {
	k := key(portal, "gen")
	pipe := s.rdb.Pipeline()
	pipe.HSetNX(ctx, k, genEpoch, rand.Text())
	get := pipe.HMGet(ctx, k, genEpoch, genCompanies, genContacts)
	if _, err := pipe.Exec(ctx); err != nil {
		return Generation{}, fmt.Errorf("mirror: generation of portal %s: %w", portal, err)
	}
	vals := get.Val()
	var g Generation
	g.Epoch, _ = vals[0].(string)
	for i, dst := range []*int64{&g.Companies, &g.Contacts} {
		v, _ := vals[i+1].(string)
		if v == "" {
			continue // never written
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Generation{}, fmt.Errorf("mirror: generation of portal %s: field %q is %q, not a number", portal, []string{genCompanies, genContacts}[i], v)
		}
		*dst = n
	}
	if g.Epoch == "" {
		return Generation{}, fmt.Errorf("mirror: generation of portal %s has no epoch", portal)
	}
	return g, nil
}
