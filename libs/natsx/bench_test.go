package natsx_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/embedded"
)

// Throughput of the ingest hot path against raw JetStream publishing, on an
// embedded server with one stream (SIGNALS, file storage), 256-byte
// payloads, a Nats-Msg-Id on every message. Each benchmark names its
// durability setting: sync_always is what we run (design/durability.md);
// lazy_fsync is the server default, for context only.
//
//	go test -run '^$' -bench 'PublishBatch500|PublishAsync' ./natsx/
//
// b.N counts messages; msgs/s is reported.

const (
	benchBatchSize   = 500
	benchPayloadSize = 256
	benchMaxPending  = 4096
	// benchStallWait lets a publish wait for a free slot instead of failing:
	// with sync always, 4096 acks in flight can take longer than the
	// client's 200ms default.
	benchStallWait = time.Minute
)

var fsyncModes = []struct {
	name string
	lazy bool
}{
	{"sync_always", false},
	{"lazy_fsync", true},
}

// BenchmarkPublishBatch500 publishes atomic batches of 500 with
// Publisher.PublishBatch (one commit ack, one fsync per batch).
func BenchmarkPublishBatch500(b *testing.B) {
	for _, mode := range fsyncModes {
		b.Run(mode.name, func(b *testing.B) {
			nc, js := benchServer(b, mode.lazy)
			pub := natsx.NewPublisher(nc, js, noop.NewTracerProvider())
			ctx := context.Background()
			payload := make([]byte, benchPayloadSize)
			subject := natsx.SignalReceivedSubject("42")
			batch := make([]*nats.Msg, 0, benchBatchSize)
			b.SetBytes(benchPayloadSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += benchBatchSize {
				batch = batch[:0]
				for j := i; j < min(i+benchBatchSize, b.N); j++ {
					batch = append(batch, benchMsg(subject, j, payload))
				}
				if _, err := pub.PublishBatch(ctx, batch); err != nil {
					b.Fatalf("PublishBatch at message %d: %v", i, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkPublishAsync publishes one message at a time with
// jetstream.PublishMsgAsync, up to 4096 in flight, and waits for every ack:
// the fastest raw per-message method.
func BenchmarkPublishAsync(b *testing.B) {
	for _, mode := range fsyncModes {
		b.Run(mode.name, func(b *testing.B) {
			nc, _ := benchServer(b, mode.lazy)
			js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(benchMaxPending))
			if err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, benchPayloadSize)
			subject := natsx.SignalReceivedSubject("42")
			b.SetBytes(benchPayloadSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := js.PublishMsgAsync(benchMsg(subject, i, payload), jetstream.WithStallWait(benchStallWait)); err != nil {
					b.Fatalf("PublishMsgAsync at message %d: %v", i, err)
				}
			}
			<-js.PublishAsyncComplete()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func benchMsg(subject string, i int, payload []byte) *nats.Msg {
	return &nats.Msg{
		Subject: subject,
		Data:    payload,
		Header:  nats.Header{natsx.HeaderMsgID: []string{"bench-" + strconv.Itoa(i)}},
	}
}

// benchServer starts an embedded server with a fresh store and the
// topology provisioned.
func benchServer(b *testing.B, lazy bool) (*nats.Conn, jetstream.JetStream) {
	b.Helper()
	srv, err := embedded.Start(embedded.Options{StoreDir: b.TempDir(), LazyFsync: lazy})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	nc, err := natsx.Connect(context.Background(), natsx.Config{URL: srv.ClientURL(), Name: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if err := natsx.Provision(context.Background(), js, natsx.DefaultTopology(natsx.TopologyOptions{})); err != nil {
		b.Fatal(err)
	}
	return nc, js
}
