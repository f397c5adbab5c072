package portal

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/signalbridge/signalbridge/libs/internal/testlog"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
)

// newBucket starts an embedded JetStream server and creates the portals bucket.
func newBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	srv := natstest.Run(t)
	js := srv.BareJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, History: 5})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return kv
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// portalYAML returns a valid config document for a portal.
func portalYAML(id, name string) string {
	return "portal_id: \"" + id + "\"\nname: " + name + "\nhubspot:\n  auth: { type: private_app, secret: HUBSPOT_TOKEN_" + id + " }\n  tier: starter\n"
}

func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStore(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	kv := newBucket(t)
	store := NewStore(kv)

	demo, err := Parse(readDemo(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, demo); err != nil {
		t.Fatalf("Put(demo): %v", err)
	}
	got, err := store.Get(ctx, "12345678")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(got, demo) {
		t.Errorf("Get returned a different config:\n%+v\nwant\n%+v", got, demo)
	}
	// The stored value is YAML that Parse accepts on its own.
	e, err := kv.Get(ctx, "12345678")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(e.Value(), []byte("portal_id: \"12345678\"")) {
		t.Errorf("stored value is not the YAML form:\n%s", e.Value())
	}

	if _, err := store.Get(ctx, "999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown) error = %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "acme", "12.>", "007"} {
		if _, err := store.Get(ctx, bad); !errors.Is(err, ErrInvalidPortalID) {
			t.Errorf("Get(%q) error = %v, want ErrInvalidPortalID", bad, err)
		}
		if err := store.Delete(ctx, bad); !errors.Is(err, ErrInvalidPortalID) {
			t.Errorf("Delete(%q) error = %v, want ErrInvalidPortalID", bad, err)
		}
	}

	// An invalid config is refused and not stored.
	invalid := mustParse(t, portalYAML("555", "Bad"))
	invalid.HubSpot.Tier = "gold"
	err = store.Put(ctx, invalid)
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), `hubspot.tier: "gold" is not one of`) {
		t.Errorf("Put(invalid) error = %v, want a ValidationError naming hubspot.tier", err)
	}
	if _, err := store.Get(ctx, "555"); !errors.Is(err, ErrNotFound) {
		t.Errorf("invalid config was stored: Get error = %v", err)
	}
	if err := store.Put(ctx, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Put(nil) error = %v", err)
	}

	if err := store.Put(ctx, mustParse(t, portalYAML("777", "Second"))); err != nil {
		t.Fatal(err)
	}
	ids, err := store.List(ctx)
	if err != nil || !reflect.DeepEqual(ids, []string{"12345678", "777"}) {
		t.Errorf("List = %v, %v", ids, err)
	}

	if err := store.Delete(ctx, "777"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := store.Get(ctx, "777"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete error = %v, want ErrNotFound", err)
	}
	if err := store.Delete(ctx, "777"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete error = %v, want ErrNotFound", err)
	}
	ids, err = store.List(ctx)
	if err != nil || !reflect.DeepEqual(ids, []string{"12345678"}) {
		t.Errorf("List after Delete = %v, %v", ids, err)
	}

	// Values written behind the store's back are checked on the way out.
	if _, err := kv.Put(ctx, "888", []byte("portal_id: [")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(ctx, "888"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Get(garbage) error = %v, want ErrInvalidConfig", err)
	}
	if _, err := kv.Put(ctx, "889", []byte(portalYAML("12345678", "Impostor"))); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(ctx, "889"); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), `names portal "12345678"`) {
		t.Errorf("Get(key holding another portal) error = %v", err)
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	kv := newBucket(t)
	store := NewStore(kv)
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))

	// Present before the watch starts: loaded by the time Watch returns.
	if err := store.Put(ctx, mustParse(t, portalYAML("100", "Alpha"))); err != nil {
		t.Fatal(err)
	}
	// Invalid before the watch starts: skipped.
	if _, err := kv.Put(ctx, "101", []byte("portal_id: \"101\"\nname: Broken\n")); err != nil {
		t.Fatal(err)
	}
	reg, err := Watch(ctx, kv, logger)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	t.Cleanup(reg.Close)
	if cfg, ok := reg.Get("100"); !ok || cfg.Name != "Alpha" {
		t.Fatalf("initial Get(100) = %+v, %v", cfg, ok)
	}
	if _, ok := reg.Get("101"); ok {
		t.Error("invalid initial value was loaded")
	}
	if got := reg.Portals(); !reflect.DeepEqual(got, []string{"100"}) {
		t.Errorf("Portals = %v", got)
	}

	// A new portal shows up.
	if err := store.Put(ctx, mustParse(t, portalYAML("200", "Beta"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "portal 200 is visible", func() bool { _, ok := reg.Get("200"); return ok })

	// An update replaces the config.
	if err := store.Put(ctx, mustParse(t, portalYAML("100", "Alpha2"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "portal 100 is renamed", func() bool { c, _ := reg.Get("100"); return c != nil && c.Name == "Alpha2" })

	// An invalid value written straight to KV is skipped; the last good config stays.
	if _, err := kv.Put(ctx, "100", []byte(strings.Replace(portalYAML("100", "Alpha3"), "tier: starter", "tier: gold", 1))); err != nil {
		t.Fatal(err)
	}
	// A config naming another portal is skipped too.
	if _, err := kv.Put(ctx, "200", []byte(portalYAML("300", "Gamma"))); err != nil {
		t.Fatal(err)
	}
	// The watch delivers in order: once this barrier is visible, the bad writes were handled.
	if err := store.Put(ctx, mustParse(t, portalYAML("900", "Barrier"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "barrier portal is visible", func() bool { _, ok := reg.Get("900"); return ok })
	if c, ok := reg.Get("100"); !ok || c.Name != "Alpha2" || c.HubSpot.Tier != TierStarter {
		t.Errorf("after an invalid write Get(100) = %+v, %v; want the last good config", c, ok)
	}
	if c, ok := reg.Get("200"); !ok || c.PortalID != "200" || c.Name != "Beta" {
		t.Errorf("after a mismatched write Get(200) = %+v, %v; want the last good config", c, ok)
	}
	if _, ok := reg.Get("300"); ok {
		t.Error("a config stored under another portal's key was registered")
	}
	out := logs.String()
	for _, want := range []string{`"portal_id":"100"`, `hubspot.tier: \"gold\" is not one of`, `"previous_config_kept":true`, `holds the config of portal \"300\"`, `"portal_id":"101"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}

	// Delete removes the portal.
	if err := store.Delete(ctx, "200"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "portal 200 is gone", func() bool { _, ok := reg.Get("200"); return !ok })
	// Purge removes it too.
	if err := kv.Purge(ctx, "900"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "portal 900 is gone", func() bool { _, ok := reg.Get("900"); return !ok })
	if got := reg.Portals(); !reflect.DeepEqual(got, []string{"100"}) {
		t.Errorf("Portals = %v, want [100]", got)
	}

	// After Close the registry answers from its last state and stops following.
	reg.Close()
	reg.Close() // idempotent
	if err := store.Put(ctx, mustParse(t, portalYAML("400", "Late"))); err != nil {
		t.Fatal(err)
	}
	if c, ok := reg.Get("100"); !ok || c.Name != "Alpha2" {
		t.Errorf("Get after Close = %+v, %v", c, ok)
	}
}

func TestRegistryConcurrentReaders(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	kv := newBucket(t)
	store := NewStore(kv)
	reg, err := Watch(ctx, kv, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	if got := reg.Portals(); len(got) != 0 {
		t.Fatalf("empty bucket: Portals = %v", got)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, id := range reg.Portals() {
					if c, ok := reg.Get(id); ok && c.PortalID != id {
						t.Errorf("Get(%s) returned portal %s", id, c.PortalID)
					}
				}
			}
		})
	}
	for i := range 20 {
		id := "5" + string(rune('0'+i/10)) + string(rune('0'+i%10))
		if err := store.Put(ctx, mustParse(t, portalYAML(id, "P"+id))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "all 20 portals are visible", func() bool { return len(reg.Portals()) == 20 })
	close(stop)
	wg.Wait()
}

func TestWatchStopsWithContext(t *testing.T) {
	t.Parallel()
	kv := newBucket(t)
	ctx, cancel := context.WithCancel(context.Background())
	reg, err := Watch(ctx, kv, nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	// The watch goroutine ends on its own once ctx is done.
	eventually(t, "the watch goroutine ends", func() bool {
		select {
		case <-reg.done:
			return true
		default:
			return false
		}
	})
	reg.Close()

	// A context that is already done fails Watch.
	if _, err := Watch(ctx, kv, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Watch(cancelled ctx) error = %v, want context.Canceled", err)
	}
}
