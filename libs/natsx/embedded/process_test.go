package embedded_test

import (
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

func TestStartProcessNeedsAStoreDir(t *testing.T) {
	t.Parallel()
	if _, _, err := embedded.StartProcess(embedded.Options{}); err == nil {
		t.Fatal("StartProcess without StoreDir succeeded")
	}
}
