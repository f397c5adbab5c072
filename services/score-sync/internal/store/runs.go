package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	scoresyncv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scoresync/v1"
)

// ErrNotFound is wrapped when a run or a portal's state does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is wrapped when a compare-and-set lost against another writer.
var ErrConflict = errors.New("changed concurrently")

// Runs keeps SyncRun records and per-portal scheduling state in the sync-state bucket:
//
//	scoresync.run.<portal>.<run id>   protojson SyncRun
//	scoresync.state.<portal>          JSON PortalState
//
// Run ids start with the UTC start time (yyyymmddThhmmssmmmZ), so they sort by age.
type Runs struct {
	kv   jetstream.KeyValue
	keep int
}

// NewRuns returns the run records in kv, keeping the newest keep runs per portal.
func NewRuns(kv jetstream.KeyValue, keep int) *Runs {
	if keep <= 0 {
		keep = 100
	}
	return &Runs{kv: kv, keep: keep}
}

// NewRunID returns a run id for a run started at t.
func NewRunID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	t = t.UTC()
	return t.Format("20060102T150405") + fmt.Sprintf("%03dZ", t.Nanosecond()/1e6) + "-" + hex.EncodeToString(b[:])
}

func runKey(portal, id string) string { return "scoresync.run." + portal + "." + id }
func runPrefix(portal string) string  { return "scoresync.run." + portal + "." }
func stateKey(portal string) string   { return "scoresync.state." + portal }

// Put stores a run record (creating or replacing it).
func (r *Runs) Put(ctx context.Context, run *scoresyncv1.SyncRun) error {
	if run.GetPortalId() == "" || run.GetRunId() == "" {
		return errors.New("store: run record needs portal_id and run_id")
	}
	data, err := protojson.Marshal(run)
	if err != nil {
		return fmt.Errorf("store: encode run %s: %w", run.GetRunId(), err)
	}
	if _, err := r.kv.Put(ctx, runKey(run.GetPortalId(), run.GetRunId()), data); err != nil {
		return fmt.Errorf("store: write run %s of portal %s: %w", run.GetRunId(), run.GetPortalId(), err)
	}
	return nil
}

// Get reads one run.
func (r *Runs) Get(ctx context.Context, portal, id string) (*scoresyncv1.SyncRun, error) {
	e, err := r.kv.Get(ctx, runKey(portal, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("store: run %s of portal %s: %w", id, portal, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read run %s of portal %s: %w", id, portal, err)
	}
	var run scoresyncv1.SyncRun
	if err := protojson.Unmarshal(e.Value(), &run); err != nil {
		return nil, fmt.Errorf("store: decode run %s of portal %s: %w", id, portal, err)
	}
	return &run, nil
}

// IDs lists the portal's run ids, newest first.
func (r *Runs) IDs(ctx context.Context, portal string) ([]string, error) {
	lister, err := r.kv.ListKeysFiltered(ctx, runPrefix(portal)+"*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("store: list runs of portal %s: %w", portal, err)
	}
	var ids []string
	for k := range lister.Keys() {
		ids = append(ids, strings.TrimPrefix(k, runPrefix(portal)))
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	return ids, nil
}

// List returns up to limit runs of the portal, newest first, starting after the run id
// `after` ("" for the newest), and the id to continue after ("" at the end).
func (r *Runs) List(ctx context.Context, portal string, limit int, after string) ([]*scoresyncv1.SyncRun, string, error) {
	ids, err := r.IDs(ctx, portal)
	if err != nil {
		return nil, "", err
	}
	start := 0
	if after != "" {
		start = len(ids)
		for i, id := range ids {
			if id < after {
				start = i
				break
			}
		}
	}
	var out []*scoresyncv1.SyncRun
	next := ""
	for i := start; i < len(ids); i++ {
		if len(out) == limit {
			next = out[len(out)-1].GetRunId()
			break
		}
		run, err := r.Get(ctx, portal, ids[i])
		if errors.Is(err, ErrNotFound) {
			continue // pruned meanwhile
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, run)
	}
	return out, next, nil
}

// Prune deletes all but the newest keep runs of the portal.
func (r *Runs) Prune(ctx context.Context, portal string) error {
	ids, err := r.IDs(ctx, portal)
	if err != nil {
		return err
	}
	for _, id := range ids[min(len(ids), r.keep):] {
		if err := r.kv.Purge(ctx, runKey(portal, id)); err != nil {
			return fmt.Errorf("store: prune run %s of portal %s: %w", id, portal, err)
		}
	}
	return nil
}

// PortalState is what the scheduler remembers about one portal.
type PortalState struct {
	// LastSlot is the latest schedule slot that was run (or skipped as missed).
	LastSlot time.Time `json:"last_slot,omitzero"`
	// ResumeAt is set after a run paused on the daily quota: a delta run is due then.
	ResumeAt time.Time `json:"resume_at,omitzero"`
	// LastFullAt is when the last full run that finished (succeeded or partial) started.
	LastFullAt time.Time `json:"last_full_at,omitzero"`
	// LastRunID is the most recent run.
	LastRunID string `json:"last_run_id,omitempty"`
}

// State reads a portal's state and its revision (0 and a zero state when there is none).
func (r *Runs) State(ctx context.Context, portal string) (PortalState, uint64, error) {
	e, err := r.kv.Get(ctx, stateKey(portal))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return PortalState{}, 0, nil
	}
	if err != nil {
		return PortalState{}, 0, fmt.Errorf("store: read state of portal %s: %w", portal, err)
	}
	var st PortalState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return PortalState{}, 0, fmt.Errorf("store: decode state of portal %s: %w", portal, err)
	}
	return st, e.Revision(), nil
}

// SetState writes a portal's state if its revision is still rev (0: it must not exist yet).
// A lost race returns an error wrapping ErrConflict.
func (r *Runs) SetState(ctx context.Context, portal string, st PortalState, rev uint64) (uint64, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return 0, fmt.Errorf("store: encode state of portal %s: %w", portal, err)
	}
	var newRev uint64
	if rev == 0 {
		newRev, err = r.kv.Create(ctx, stateKey(portal), data)
	} else {
		newRev, err = r.kv.Update(ctx, stateKey(portal), data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("store: state of portal %s: %w", portal, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("store: write state of portal %s: %w", portal, err)
	}
	return newRev, nil
}

// UpdateState applies change to the portal's state with compare-and-set, retrying conflicts.
func (r *Runs) UpdateState(ctx context.Context, portal string, change func(*PortalState)) error {
	for attempt := 0; ; attempt++ {
		st, rev, err := r.State(ctx, portal)
		if err != nil {
			return err
		}
		change(&st)
		if _, err = r.SetState(ctx, portal, st, rev); err == nil || !errors.Is(err, ErrConflict) || attempt >= 20 {
			return err
		}
	}
}
