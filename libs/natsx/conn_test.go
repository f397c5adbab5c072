package natsx_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
)

// Connect keeps trying while the server is down and returns once it is up.
func TestConnectWaitsForServer(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t)
	srv.Stop()

	// While the server is down, Connect gives up when ctx ends.
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if nc, err := natsx.Connect(short, natsx.Config{URL: srv.URL(), Name: "test"}, nil); !errors.Is(err, natsx.ErrUnavailable) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("Connect with the server down = %v, want ErrUnavailable", err)
	}

	type result struct {
		ok  bool
		err error
	}
	done := make(chan result, 1)
	ctx, cancelLong := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancelLong()
	retrying := make(chan struct{})
	var once sync.Once
	delay := nats.CustomReconnectDelay(func(int) time.Duration {
		once.Do(func() { close(retrying) })
		return 20 * time.Millisecond
	})
	go func() {
		nc, err := natsx.Connect(ctx, natsx.Config{URL: srv.URL(), Name: "test"}, nil, delay)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer nc.Close()
		done <- result{ok: nc.IsConnected()}
	}()
	select {
	case <-retrying: // Connect failed once and is retrying
	case r := <-done:
		t.Fatalf("Connect returned while the server was down: %+v", r)
	}
	srv.Restart(t)
	if r := <-done; r.err != nil || !r.ok {
		t.Fatalf("Connect after the server came up = connected %v, err %v", r.ok, r.err)
	}
}

func TestConnectInvalidConfig(t *testing.T) {
	t.Parallel()
	if _, err := natsx.Connect(context.Background(), natsx.Config{}, nil); err == nil {
		t.Fatal("Connect with an empty URL succeeded")
	}
}
