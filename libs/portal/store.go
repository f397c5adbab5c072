package portal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"
)

// Bucket is the name of the JetStream KV bucket that holds portal configs.
const Bucket = "portals"

var (
	// ErrNotFound: no config is stored for the portal.
	ErrNotFound = errors.New("portal not found")
	// ErrInvalidPortalID: the portal id is not a HubSpot portal id (digits).
	ErrInvalidPortalID = errors.New("invalid portal id")
)

// Store keeps portal configs in the JetStream KV bucket "portals". The key is the
// portal id; the value is the config as YAML, the same format an admin writes, with
// defaults filled in (comments are not kept). A stored value is always one that
// [Parse] accepts.
type Store struct {
	kv jetstream.KeyValue
}

// NewStore returns a Store over kv (normally the "portals" bucket).
func NewStore(kv jetstream.KeyValue) *Store {
	return &Store{kv: kv}
}

func checkPortalID(id string) error {
	if !portalIDRe.MatchString(id) {
		return fmt.Errorf("%w: %q must be digits with no leading zero", ErrInvalidPortalID, id)
	}
	return nil
}

// Marshal encodes cfg the way [Store] stores it (YAML).
func Marshal(cfg *Config) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("marshal portal %s: %w", cfg.PortalID, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal portal %s: %w", cfg.PortalID, err)
	}
	return buf.Bytes(), nil
}

// Put validates cfg and stores it under its portal id, replacing any previous
// version. An invalid config is not stored; the error is a [*ValidationError].
// Put does not apply defaults: use [Parse] or call [Config.ApplyDefaults] first.
func (s *Store) Put(ctx context.Context, cfg *Config) error {
	if cfg == nil {
		return fmt.Errorf("put portal: %w: nil config", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("put portal %s: %w", cfg.PortalID, err)
	}
	b, err := Marshal(cfg)
	if err != nil {
		return err
	}
	// Round-trip through Parse so that what is stored is exactly what readers accept.
	if _, err := Parse(b); err != nil {
		return fmt.Errorf("put portal %s: stored form does not parse: %w", cfg.PortalID, err)
	}
	if _, err := s.kv.Put(ctx, cfg.PortalID, b); err != nil {
		return fmt.Errorf("put portal %s: %w", cfg.PortalID, err)
	}
	return nil
}

// Get returns the stored config of a portal, or an error wrapping [ErrNotFound].
func (s *Store) Get(ctx context.Context, portalID string) (*Config, error) {
	if err := checkPortalID(portalID); err != nil {
		return nil, fmt.Errorf("get portal: %w", err)
	}
	e, err := s.kv.Get(ctx, portalID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("get portal %s: %w", portalID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get portal %s: %w", portalID, err)
	}
	cfg, err := Parse(e.Value())
	if err != nil {
		return nil, fmt.Errorf("get portal %s (revision %d): %w", portalID, e.Revision(), err)
	}
	if cfg.PortalID != portalID {
		return nil, fmt.Errorf("get portal %s: stored config names portal %q: %w", portalID, cfg.PortalID, ErrInvalidConfig)
	}
	return cfg, nil
}

// Delete removes a portal's config. It returns an error wrapping [ErrNotFound]
// if there is none, and fails rather than deleting a config that changed since
// it looked.
func (s *Store) Delete(ctx context.Context, portalID string) error {
	if err := checkPortalID(portalID); err != nil {
		return fmt.Errorf("delete portal: %w", err)
	}
	e, err := s.kv.Get(ctx, portalID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete portal %s: %w", portalID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete portal %s: %w", portalID, err)
	}
	if err := s.kv.Delete(ctx, portalID, jetstream.LastRevision(e.Revision())); err != nil {
		return fmt.Errorf("delete portal %s: %w", portalID, err)
	}
	return nil
}

// List returns the ids of all stored portals, sorted.
func (s *Store) List(ctx context.Context) ([]string, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list portals: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	var ids []string
	for k := range lister.Keys() {
		ids = append(ids, k)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list portals: %w", err)
	}
	slices.Sort(ids)
	return ids, nil
}
