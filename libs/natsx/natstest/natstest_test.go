package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
)

// A KV value written before Stop is there after Restart, on the same URL,
// through the same client (which reconnects by itself).
func TestStopRestartKeepsData(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t)
	js := srv.JetStream(t) // provisions the topology
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	kv, err := js.KeyValue(ctx, natsx.BucketPortals)
	if err != nil {
		t.Fatalf("portals bucket: %v", err)
	}
	if _, err := kv.Put(ctx, "portal-42", []byte("tier: pro")); err != nil {
		t.Fatalf("put: %v", err)
	}
	url := srv.URL()

	srv.Stop()
	if srv.Inner() != nil {
		t.Fatal("Inner() not nil after Stop")
	}
	srv.Stop() // idempotent
	srv.Restart(t)
	if srv.URL() != url || srv.Inner().ClientURL() != url {
		t.Fatalf("restarted on %s, want %s", srv.Inner().ClientURL(), url)
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		entry, err := kv.Get(ctx, "portal-42")
		if err == nil {
			if string(entry.Value()) != "tier: pro" {
				t.Fatalf("value after restart = %q", entry.Value())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("get after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
