package natsx_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
)

func TestProvisionIdempotent(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t)
	js := srv.BareJetStream(t)
	ctx := testCtx(t)
	topo := natsx.DefaultTopology(natsx.TopologyOptions{})
	for round := 1; round <= 2; round++ {
		if err := natsx.Provision(ctx, js, topo); err != nil {
			t.Fatalf("Provision round %d: %v", round, err)
		}
	}

	streams := []struct {
		name    string
		subject string
		maxAge  time.Duration
		dup     time.Duration
	}{
		{"SIGNALS", "signals.v1.>", 7 * 24 * time.Hour, 15 * time.Minute},
		{"SCORES", "scores.v1.>", 7 * 24 * time.Hour, 15 * time.Minute},
		{"HUBSPOT", "hubspot.v1.>", 7 * 24 * time.Hour, 20 * time.Minute},
		{"CONTACTS", "contacts.v1.>", 7 * 24 * time.Hour, 15 * time.Minute},
		{"ACTIONS", "actions.v1.>", 7 * 24 * time.Hour, 15 * time.Minute},
		{"DLQ", "dlq.>", 30 * 24 * time.Hour, 15 * time.Minute},
	}
	for _, want := range streams {
		st, err := js.Stream(ctx, want.name)
		if err != nil {
			t.Fatalf("stream %s: %v", want.name, err)
		}
		cfg := st.CachedInfo().Config
		if len(cfg.Subjects) != 1 || cfg.Subjects[0] != want.subject {
			t.Errorf("%s subjects = %v, want [%s]", want.name, cfg.Subjects, want.subject)
		}
		if cfg.Retention != jetstream.LimitsPolicy || cfg.MaxAge != want.maxAge || cfg.Duplicates != want.dup ||
			!cfg.AllowAtomicPublish || cfg.Storage != jetstream.FileStorage || cfg.Replicas != 1 {
			t.Errorf("%s config = retention %v maxAge %v dup %v atomic %v storage %v replicas %d",
				want.name, cfg.Retention, cfg.MaxAge, cfg.Duplicates, cfg.AllowAtomicPublish, cfg.Storage, cfg.Replicas)
		}
	}
	buckets := map[string]int64{"portals": 5, "score-state": 1, "contact-links": 1, "sync-state": 1}
	for name, history := range buckets {
		kv, err := js.KeyValue(ctx, name)
		if err != nil {
			t.Fatalf("KV %s: %v", name, err)
		}
		status, err := kv.Status(ctx)
		if err != nil {
			t.Fatalf("KV %s status: %v", name, err)
		}
		if status.History() != history {
			t.Errorf("KV %s history = %d, want %d", name, status.History(), history)
		}
	}
	obj, err := js.ObjectStore(ctx, natsx.BucketScoreSync)
	if err != nil {
		t.Fatalf("object store %s: %v", natsx.BucketScoreSync, err)
	}
	status, err := obj.Status(ctx)
	if err != nil {
		t.Fatalf("object store %s status: %v", natsx.BucketScoreSync, err)
	}
	if status.Bucket() != "score-sync" || status.Storage() != jetstream.FileStorage || status.Replicas() != 1 || status.Description() == "" {
		t.Errorf("object store %s = storage %v replicas %d description %q", status.Bucket(), status.Storage(), status.Replicas(), status.Description())
	}
}

// Provisioning again keeps what the object store holds.
func TestProvisionKeepsObjects(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t)
	js := srv.BareJetStream(t)
	ctx := testCtx(t)
	topo := natsx.DefaultTopology(natsx.TopologyOptions{})
	if err := natsx.Provision(ctx, js, topo); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	obj, err := js.ObjectStore(ctx, natsx.BucketScoreSync)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.PutBytes(ctx, "portal/1/part-1", []byte("rows")); err != nil {
		t.Fatal(err)
	}
	if err := natsx.Provision(ctx, js, topo); err != nil {
		t.Fatalf("Provision again: %v", err)
	}
	got, err := obj.GetBytes(ctx, "portal/1/part-1")
	if err != nil || string(got) != "rows" {
		t.Fatalf("after provisioning again the object reads %q, %v", got, err)
	}
}

func TestProvisionErrorNamesObjectStore(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t)
	js := srv.BareJetStream(t)
	topo := natsx.Topology{ObjectStores: []jetstream.ObjectStoreConfig{{Bucket: "ok"}, {Bucket: "not ok"}}}
	err := natsx.Provision(testCtx(t), js, topo)
	if want := `object store bucket "not ok" (ObjectStores[1])`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Provision = %v, want an error naming %s", err, want)
	}
}

func TestProvisionErrorNamesStream(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t)
	js := srv.BareJetStream(t)
	topo := natsx.Topology{Streams: []jetstream.StreamConfig{
		{Name: "OK", Subjects: []string{"ok.>"}},
		{Name: "CLASH", Subjects: []string{"ok.x"}}, // overlaps OK's subjects
	}}
	err := natsx.Provision(testCtx(t), js, topo)
	if err == nil {
		t.Fatal("Provision with overlapping subjects succeeded")
	}
	if want := `stream "CLASH" (Streams[1])`; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %s", err, want)
	}
}
