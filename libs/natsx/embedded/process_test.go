package embedded_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/signalbridge/signalbridge/libs/internal/testlog"
	"github.com/signalbridge/signalbridge/libs/natsx/embedded"
)

func TestMain(m *testing.M) {
	embedded.RunProcessIfChild() // the test binary is the server process's binary too
	os.Exit(m.Run())
}

func TestStartProcessServesJetStreamUntilStopped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	url, stop, err := embedded.StartProcess(embedded.Options{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, nats.MaxReconnects(0))
	if err != nil {
		stop()
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "P", Subjects: []string{"p.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "p.1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/jetstream"); err != nil {
		t.Errorf("the server process did not store in StoreDir: %v", err)
	}

	stop()
	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsClosed() {
		if time.Now().After(deadline) {
			t.Fatal("the connection is still open after stop: the server process did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The process gets ProcessEnv and writes its standard error to
// ProcessStderr: with GODEBUG=gctrace=1 the server's runtime reports its GC
// cycles there (webhook-bench lines them up with slow requests).
func TestStartProcessPassesEnvAndStderr(t *testing.T) {
	t.Parallel()
	var stderr testlog.Buffer
	url, stop, err := embedded.StartProcess(embedded.Options{StoreDir: t.TempDir(),
		ProcessEnv: []string{"GODEBUG=gctrace=1", "GOGC=1"}, ProcessStderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	nc, err := nats.Connect(url, nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Work for the server's heap: with GOGC=1 it collects all the time.
	for i := range 2000 {
		if err := nc.Publish("x", make([]byte, 1024+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "gc 1 @") {
		if time.Now().After(deadline) {
			t.Fatalf("no gctrace line on ProcessStderr after 10s; it holds %q", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartProcessNeedsAStoreDir(t *testing.T) {
	t.Parallel()
	if _, _, err := embedded.StartProcess(embedded.Options{}); err == nil {
		t.Fatal("StartProcess without StoreDir succeeded")
	}
}
