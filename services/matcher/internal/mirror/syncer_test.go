package mirror_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/portal"
	"github.com/signalbridge/signalbridge/services/matcher/internal/mirror"
)

// onePortal is a Portals with one portal and a read interval.
type onePortal struct {
	id    string
	every time.Duration
}

func (p onePortal) Portals() []string { return []string{p.id} }

func (p onePortal) Get(id string) (*portal.Config, bool) {
	if id != p.id {
		return nil, false
	}
	c := &portal.Config{PortalID: id}
	c.Sync.CRMReadInterval = portal.NewDuration(p.every)
	return c, true
}

func TestSyncerPlansFullThenIncrementalByInterval(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	f.sb.SeedCompanies(map[string]string{"name": "S", "domain": "syncer.com"})
	s := mirror.NewSyncer(f.reader, onePortal{f.portal, 2 * time.Hour}, f.hs.Client, mirror.SyncerOptions{FullEvery: -1, Now: f.clock.Now})
	ctx := context.Background()
	runs := func() map[string]mirror.Run {
		st, err := f.store.State(ctx, f.portal)
		if err != nil {
			t.Fatal(err)
		}
		return st.Runs
	}
	if err := s.SyncPortal(ctx, f.portal); err != nil {
		t.Fatal(err)
	}
	st, _ := f.store.State(ctx, f.portal)
	if !st.Ready || st.Runs["companies"].Mode != mirror.ModeFull || st.Runs["deals:full"].Error != "" || st.Running != "" {
		t.Fatalf("after the first sync: %+v", st)
	}
	first := runs()["companies"].Started
	f.clock.Advance(time.Hour) // not due yet (interval 2h)
	if err := s.SyncPortal(ctx, f.portal); err != nil {
		t.Fatal(err)
	}
	if got := runs()["companies"]; !got.Started.Equal(first) {
		t.Fatalf("read again before the interval: %+v", got)
	}
	f.clock.Advance(time.Hour + time.Second)
	if err := s.SyncPortal(ctx, f.portal); err != nil {
		t.Fatal(err)
	}
	if got := runs()["companies"]; got.Mode != mirror.ModeIncremental || got.Started.Equal(first) {
		t.Fatalf("after the interval: %+v", got)
	}
}

func TestSyncerLeaseKeepsOtherReplicasOut(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	ctx := context.Background()
	ok, err := f.store.Lock(ctx, f.portal, "other-replica", time.Minute)
	if err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	s := mirror.NewSyncer(f.reader, onePortal{f.portal, time.Hour}, f.hs.Client, mirror.SyncerOptions{Now: f.clock.Now})
	err = s.SyncPortal(ctx, f.portal)
	if err == nil || !strings.Contains(err.Error(), "another replica") {
		t.Fatalf("err = %v, want the lease held elsewhere", err)
	}
	if st, _ := f.store.State(ctx, f.portal); len(st.Runs) != 0 {
		t.Fatalf("read despite the lease: %+v", st)
	}
}

func TestSyncerRecordsAFailedReadAndRetries(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	broken := func(string) (*hubspot.Client, error) { return nil, errors.New("secret not set") }
	s := mirror.NewSyncer(f.reader, onePortal{f.portal, time.Hour}, broken, mirror.SyncerOptions{Now: f.clock.Now})
	ctx := context.Background()
	if err := s.SyncPortal(ctx, f.portal); err == nil || !strings.Contains(err.Error(), "secret not set") {
		t.Fatalf("err = %v", err)
	}
	st, err := f.store.State(ctx, f.portal)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Runs["companies"]; !strings.Contains(r.Error, "secret not set") || st.Ready {
		t.Fatalf("the failure is not recorded: %+v", st)
	}
	// Not retried at once, but after RetryAfter (1m by default).
	f.clock.Advance(10 * time.Second)
	if err := s.SyncPortal(ctx, f.portal); err != nil {
		t.Fatalf("retried before RetryAfter: %v", err)
	}
	f.clock.Advance(time.Minute)
	if err := s.SyncPortal(ctx, f.portal); err == nil {
		t.Fatal("not retried after RetryAfter")
	}
}
