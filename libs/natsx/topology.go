package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names.
const (
	StreamSignals  = "SIGNALS"
	StreamScores   = "SCORES"
	StreamHubSpot  = "HUBSPOT"
	StreamContacts = "CONTACTS"
	StreamActions  = "ACTIONS"
	StreamDLQ      = "DLQ"
)

// KV bucket names.
const (
	BucketPortals      = "portals"
	BucketScoreState   = "score-state"
	BucketContactLinks = "contact-links"
	BucketSyncState    = "sync-state"
)

// Object store bucket names.
const (
	// BucketScoreSync holds the parts of score-sync's per-portal score and
	// sent-state tables (their manifests are keys of BucketScoreState).
	BucketScoreSync = "score-sync"
)

// Retention and de-duplication windows.
const (
	retentionEvents = 7 * 24 * time.Hour
	retentionDLQ    = 30 * 24 * time.Hour
	// dedupWindow is how long a Nats-Msg-Id is remembered; the server
	// default (2m) is shorter than a client's retry horizon.
	dedupWindow = 15 * time.Minute
	// dedupWindowHubSpot is longer: HubSpot retries webhook deliveries.
	dedupWindowHubSpot = 20 * time.Minute
)

// Topology is every stream, KV bucket and object store bucket the platform
// uses, declared once in code and provisioned by Provision.
type Topology struct {
	Streams      []jetstream.StreamConfig
	KV           []jetstream.KeyValueConfig
	ObjectStores []jetstream.ObjectStoreConfig
}

// TopologyOptions are the settings that differ between deployments.
type TopologyOptions struct {
	// Replicas per stream and bucket: 1 (the default) for a single server,
	// 3 for a production cluster.
	Replicas int
	// Storage for streams and buckets; the zero value is FileStorage.
	Storage jetstream.StorageType
}

// DefaultTopology returns the platform's streams (Limits retention, atomic
// batch publishing allowed), KV buckets and object store buckets.
func DefaultTopology(o TopologyOptions) Topology {
	replicas := o.Replicas
	if replicas <= 0 {
		replicas = 1
	}
	stream := func(name, desc, subjects string, maxAge, dup time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:               name,
			Description:        desc,
			Subjects:           []string{subjects},
			Retention:          jetstream.LimitsPolicy,
			Discard:            jetstream.DiscardOld,
			MaxAge:             maxAge,
			Duplicates:         dup,
			Storage:            o.Storage,
			Replicas:           replicas,
			AllowAtomicPublish: true,
		}
	}
	kv := func(bucket, desc string, history uint8) jetstream.KeyValueConfig {
		return jetstream.KeyValueConfig{
			Bucket:      bucket,
			Description: desc,
			History:     history,
			Storage:     o.Storage,
			Replicas:    replicas,
		}
	}
	return Topology{
		Streams: []jetstream.StreamConfig{
			stream(StreamSignals, "intent signals: received and matched", signalsPrefix+">", retentionEvents, dedupWindow),
			stream(StreamScores, "account score updates", scoresPrefix+">", retentionEvents, dedupWindow),
			stream(StreamHubSpot, "verified HubSpot webhook events", hubspotPrefix+">", retentionEvents, dedupWindowHubSpot),
			stream(StreamContacts, "contact changes, local and from HubSpot", contactsPrefix+">", retentionEvents, dedupWindow),
			stream(StreamActions, "action outcomes", actionsPrefix+">", retentionEvents, dedupWindow),
			stream(StreamDLQ, "dead letters: original payload and headers plus reason", dlqPrefix+">", retentionDLQ, dedupWindow),
		},
		KV: []jetstream.KeyValueConfig{
			kv(BucketPortals, "portal configuration", 5),
			kv(BucketScoreState, "last score sent to HubSpot per record", 1),
			kv(BucketContactLinks, "local contact id to HubSpot contact id", 1),
			kv(BucketSyncState, "sync cursors and runs", 1),
		},
		ObjectStores: []jetstream.ObjectStoreConfig{
			{
				Bucket:      BucketScoreSync,
				Description: "score-sync: parts of the scores and sent-state tables (manifests in KV score-state)",
				Storage:     o.Storage,
				Replicas:    replicas,
			},
		},
	}
}

// Provision creates or updates every stream, KV bucket and object store
// bucket of t. It is idempotent; the error names the stream or bucket that
// failed.
func Provision(ctx context.Context, js jetstream.JetStream, t Topology) error {
	if js == nil {
		return errors.New("natsx: provision: nil JetStream")
	}
	for i, cfg := range t.Streams {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return classify(ctx, fmt.Sprintf("natsx: provision stream %q (Streams[%d])", cfg.Name, i), err)
		}
	}
	for i, cfg := range t.KV {
		if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return classify(ctx, fmt.Sprintf("natsx: provision KV bucket %q (KV[%d])", cfg.Bucket, i), err)
		}
	}
	for i, cfg := range t.ObjectStores {
		if _, err := js.CreateOrUpdateObjectStore(ctx, cfg); err != nil {
			return classify(ctx, fmt.Sprintf("natsx: provision object store bucket %q (ObjectStores[%d])", cfg.Bucket, i), err)
		}
	}
	return nil
}
