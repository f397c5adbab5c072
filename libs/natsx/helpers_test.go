package natsx_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
)

// env is one embedded server with a provisioned topology and a client.
type env struct {
	srv *natstest.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

func newEnv(t *testing.T) env {
	t.Helper()
	srv := natstest.Run(t)
	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	ctx := testCtx(t)
	if err := natsx.Provision(ctx, js, natsx.DefaultTopology(natsx.TopologyOptions{})); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return env{srv: srv, nc: nc, js: js}
}

// testCtx is a context that ends with the test (or after 30s).
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// signalMsgs builds one SignalReceived-style message per id for portal.
func signalMsgs(t testing.TB, portal string, ids ...string) []*nats.Msg {
	t.Helper()
	msgs := make([]*nats.Msg, len(ids))
	for i, id := range ids {
		m, err := natsx.NewMsg(context.Background(), natsx.SignalReceivedSubject(portal), id, wrapperspb.String("payload-"+id))
		if err != nil {
			t.Fatalf("NewMsg(%q): %v", id, err)
		}
		msgs[i] = m
	}
	return msgs
}

func idRange(prefix string, from, to int) []string {
	ids := make([]string, 0, to-from+1)
	for i := from; i <= to; i++ {
		ids = append(ids, fmt.Sprintf("%s-%d", prefix, i))
	}
	return ids
}

// readStream returns every message stored in stream, in order.
func readStream(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := testCtx(t)
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("stream %s get seq %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func msgIDs(msgs []*jetstream.RawStreamMsg) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.Header.Get(natsx.HeaderMsgID)
	}
	return ids
}

// checkDLQHeaders reports every header of the dead letter d that differs from want.
func checkDLQHeaders(t *testing.T, d *jetstream.RawStreamMsg, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := d.Header.Get(k); got != v {
			t.Errorf("DLQ header %s = %q, want %q", k, got, v)
		}
	}
}
