package natsx_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/signalbridge/signalbridge/libs/natsx"
)

// calls records handler invocations by message id.
type calls struct {
	mu         sync.Mutex
	deliveries map[string][]uint64 // NumDelivered of each call
}

func (c *calls) record(m jetstream.Msg) uint64 {
	md, err := m.Metadata()
	n := uint64(0)
	if err == nil {
		n = md.NumDelivered
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deliveries == nil {
		c.deliveries = map[string][]uint64{}
	}
	id := m.Headers().Get(natsx.HeaderMsgID)
	c.deliveries[id] = append(c.deliveries[id], n)
	return n
}

func (c *calls) of(id string) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint64(nil), c.deliveries[id]...)
}

func fastBackoff(uint64) time.Duration { return 10 * time.Millisecond }

func startConsumer(t *testing.T, e env, spec natsx.ConsumerSpec, h natsx.Handler) *natsx.Consumer {
	t.Helper()
	c, err := natsx.Consume(testCtx(t), e.js, spec, h, nil)
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return c
}

func consumerInfo(t *testing.T, e env, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx := testCtx(t)
	cons, err := e.js.Consumer(ctx, natsx.StreamSignals, durable)
	if err != nil {
		t.Fatalf("consumer %s: %v", durable, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatalf("consumer %s info: %v", durable, err)
	}
	return info
}

// waitAcked waits until the consumer has acknowledged everything up to seq.
func waitAcked(t *testing.T, e env, durable string, seq uint64) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	eventually(t, fmt.Sprintf("consumer %s to ack through seq %d", durable, seq), func() bool {
		info = consumerInfo(t, e, durable)
		return info.AckFloor.Stream >= seq && info.NumAckPending == 0
	})
	return info
}

func publish(t *testing.T, e env, ids ...string) {
	t.Helper()
	pub := natsx.NewPublisher(e.nc, e.js, nil)
	if _, err := pub.PublishBatch(testCtx(t), signalMsgs(t, "42", ids...)); err != nil {
		t.Fatalf("publish %v: %v", ids, err)
	}
}

func TestConsumeAcks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	publish(t, e, "a", "b", "c")
	var got calls
	startConsumer(t, e, natsx.ConsumerSpec{Stream: natsx.StreamSignals, Durable: "test-ack", Workers: 2},
		func(_ context.Context, m jetstream.Msg) error {
			got.record(m)
			return nil
		})
	info := waitAcked(t, e, "test-ack", 3)
	for _, id := range []string{"a", "b", "c"} {
		if d := got.of(id); len(d) != 1 || d[0] != 1 {
			t.Errorf("message %s handled with deliveries %v, want once", id, d)
		}
	}
	cfg := info.Config
	if cfg.AckPolicy != jetstream.AckExplicitPolicy || cfg.MaxDeliver != natsx.DefaultMaxDeliver || cfg.AckWait != natsx.DefaultAckWait || cfg.Durable != "test-ack" {
		t.Errorf("consumer config = ack %v maxDeliver %d ackWait %s durable %q", cfg.AckPolicy, cfg.MaxDeliver, cfg.AckWait, cfg.Durable)
	}
}

func TestConsumeTransientIsRedelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	publish(t, e, "flaky")
	var got calls
	startConsumer(t, e, natsx.ConsumerSpec{Stream: natsx.StreamSignals, Durable: "test-transient", Backoff: fastBackoff},
		func(_ context.Context, m jetstream.Msg) error {
			if got.record(m) == 1 {
				return errors.New("downstream timeout")
			}
			return nil
		})
	waitAcked(t, e, "test-transient", 1)
	if d := got.of("flaky"); len(d) != 2 || d[0] != 1 || d[1] != 2 {
		t.Fatalf("deliveries = %v, want [1 2]", d)
	}
	if dlq := readStream(t, e.js, natsx.StreamDLQ); len(dlq) != 0 {
		t.Fatalf("transient failure reached the DLQ: %d messages", len(dlq))
	}
}

func TestConsumePanicIsTransient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	publish(t, e, "boom")
	var got calls
	startConsumer(t, e, natsx.ConsumerSpec{Stream: natsx.StreamSignals, Durable: "test-panic", Backoff: fastBackoff},
		func(_ context.Context, m jetstream.Msg) error {
			if got.record(m) == 1 {
				panic("nil map write")
			}
			return nil
		})
	waitAcked(t, e, "test-panic", 1)
	if d := got.of("boom"); len(d) != 2 {
		t.Fatalf("deliveries = %v, want 2 (panic, then success)", d)
	}
}

func TestConsumePermanentGoesToDLQ(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	publish(t, e, "poison", "fine")
	original := readStream(t, e.js, natsx.StreamSignals)[0]
	var got calls
	startConsumer(t, e, natsx.ConsumerSpec{Stream: natsx.StreamSignals, Durable: "test-perm", Backoff: fastBackoff},
		func(_ context.Context, m jetstream.Msg) error {
			got.record(m)
			if m.Headers().Get(natsx.HeaderMsgID) == "poison" {
				return natsx.Permanent(errors.New("bad payload:\nfield account.domain is empty"))
			}
			return nil
		})
	info := waitAcked(t, e, "test-perm", 2)
	if info.NumRedelivered != 0 {
		t.Errorf("NumRedelivered = %d, want 0", info.NumRedelivered)
	}
	if d := got.of("poison"); len(d) != 1 {
		t.Errorf("poison handled %d times, want once", len(d))
	}
	dlq := readStream(t, e.js, natsx.StreamDLQ)
	if len(dlq) != 1 {
		t.Fatalf("DLQ has %d messages, want 1", len(dlq))
	}
	d := dlq[0]
	if d.Subject != "dlq.SIGNALS.test-perm" {
		t.Errorf("DLQ subject = %q", d.Subject)
	}
	if string(d.Data) != string(original.Data) {
		t.Errorf("DLQ payload differs from the original")
	}
	want := map[string]string{
		natsx.HeaderMsgID:         "dlq:SIGNALS:1",
		natsx.HeaderDLQReason:     "bad payload: field account.domain is empty",
		natsx.HeaderDLQSubject:    "signals.v1.42.received",
		natsx.HeaderDLQStream:     "SIGNALS",
		natsx.HeaderDLQStreamSeq:  "1",
		natsx.HeaderDLQConsumer:   "test-perm",
		natsx.HeaderDLQDeliveries: "1",
		natsx.HeaderDLQMsgID:      "poison",
		natsx.HeaderEventType:     "google.protobuf.StringValue",
	}
	checkDLQHeaders(t, d, want)
	if d.Header.Get("Nats-Batch-Id") != "" {
		t.Errorf("DLQ copy kept the original's batch headers: %v", d.Header)
	}
}

func TestConsumeMaxDeliverForwardedToDLQ(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	stop, err := natsx.ForwardMaxDeliveries(testCtx(t), e.nc, e.js, natsx.StreamSignals, "test-maxdel", nil)
	if err != nil {
		t.Fatalf("ForwardMaxDeliveries: %v", err)
	}
	t.Cleanup(stop)
	publish(t, e, "always-fails")
	var got calls
	startConsumer(t, e, natsx.ConsumerSpec{Stream: natsx.StreamSignals, Durable: "test-maxdel", MaxDeliver: 3, Backoff: fastBackoff},
		func(_ context.Context, m jetstream.Msg) error {
			got.record(m)
			return errors.New("hubspot unavailable")
		})
	var dlq []*jetstream.RawStreamMsg
	eventually(t, "the dead letter", func() bool {
		dlq = readStream(t, e.js, natsx.StreamDLQ)
		return len(dlq) > 0
	})
	d := dlq[0]
	want := map[string]string{
		natsx.HeaderMsgID:         "dlq:SIGNALS:1",
		natsx.HeaderDLQReason:     natsx.ReasonMaxDeliveries,
		natsx.HeaderDLQSubject:    "signals.v1.42.received",
		natsx.HeaderDLQStreamSeq:  "1",
		natsx.HeaderDLQConsumer:   "test-maxdel",
		natsx.HeaderDLQDeliveries: "3",
		natsx.HeaderDLQMsgID:      "always-fails",
	}
	checkDLQHeaders(t, d, want)
	if d.Subject != "dlq.SIGNALS.test-maxdel" {
		t.Errorf("DLQ subject = %q", d.Subject)
	}
	if n := len(got.of("always-fails")); n != 3 {
		t.Errorf("handled %d times, want MaxDeliver = 3", n)
	}
}

func TestConsumerStopDrains(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	publish(t, e, "slow")
	started := make(chan struct{})
	release := make(chan struct{})
	var handlerCtxErr error
	c := startConsumer(t, e, natsx.ConsumerSpec{Stream: natsx.StreamSignals, Durable: "test-stop"},
		func(ctx context.Context, _ jetstream.Msg) error {
			close(started)
			<-release
			handlerCtxErr = ctx.Err()
			return nil
		})
	<-started

	// While the handler runs, a Stop whose ctx ends reports that it has not
	// finished draining.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Stop(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with a handler still running and ctx cancelled = %v, want context.Canceled", err)
	}

	close(release)
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	if err := c.Stop(stopCtx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if handlerCtxErr != nil {
		t.Errorf("handler context was cancelled during drain: %v", handlerCtxErr)
	}
	// Stop returned only after the handler finished and acked.
	if info := consumerInfo(t, e, "test-stop"); info.AckFloor.Stream != 1 {
		t.Errorf("after Stop, ack floor = %d, want 1 (the in-flight message acked)", info.AckFloor.Stream)
	}
}

func TestConsumeSpanParentedOnProducer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))

	ctx, root := tp.Tracer("test").Start(testCtx(t), "http request")
	msgs := signalMsgs(t, "42", "traced")
	// NewMsg used a context without the span; Publish injects its own.
	if _, err := natsx.NewPublisher(e.nc, e.js, tp).Publish(ctx, msgs[0]); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	root.End()

	handled := make(chan trace.SpanContext, 1)
	startConsumer(t, e, natsx.ConsumerSpec{Stream: natsx.StreamSignals, Durable: "test-trace", TracerProvider: tp},
		func(ctx context.Context, _ jetstream.Msg) error {
			handled <- trace.SpanContextFromContext(ctx)
			return nil
		})
	inHandler := <-handled
	waitAcked(t, e, "test-trace", 1)

	var producer, consumer sdktrace.ReadOnlySpan
	eventually(t, "consumer span to end", func() bool {
		for _, s := range rec.Ended() {
			switch s.SpanKind() {
			case trace.SpanKindProducer:
				producer = s
			case trace.SpanKindConsumer:
				consumer = s
			}
		}
		return consumer != nil
	})
	if producer == nil || producer.Parent().SpanID() != root.SpanContext().SpanID() {
		t.Fatalf("producer span missing or not a child of the request span")
	}
	if consumer.Name() != "process signals.v1.{portal}.received" {
		t.Errorf("consumer span name = %q", consumer.Name())
	}
	if consumer.Parent().SpanID() != producer.SpanContext().SpanID() || consumer.SpanContext().TraceID() != root.SpanContext().TraceID() {
		t.Errorf("consumer span parent = %s, want producer span %s in trace %s",
			consumer.Parent().SpanID(), producer.SpanContext().SpanID(), root.SpanContext().TraceID())
	}
	if inHandler.SpanID() != consumer.SpanContext().SpanID() {
		t.Errorf("handler context does not carry the consumer span")
	}
	attrs := attribute.NewSet(consumer.Attributes()...)
	for k, v := range map[attribute.Key]string{
		"messaging.consumer.group.name": "test-trace",
		"messaging.destination.name":    "signals.v1.{portal}.received",
		"messaging.message.id":          "traced",
		"messaging.system":              "nats",
		"signalbridge.portal_id":        "42",
	} {
		if got, ok := attrs.Value(k); !ok || got.AsString() != v {
			t.Errorf("consumer span attribute %s = %v, want %q", k, got.AsString(), v)
		}
	}
}

func TestConsumeInvalidSpec(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := func(context.Context, jetstream.Msg) error { return nil }
	tests := []struct {
		name string
		spec natsx.ConsumerSpec
		want string
	}{
		{"no stream", natsx.ConsumerSpec{Durable: "x"}, "ConsumerSpec.Stream"},
		{"dotted durable", natsx.ConsumerSpec{Stream: "SIGNALS", Durable: "a.b"}, "ConsumerSpec.Durable"},
		{"unlimited deliveries", natsx.ConsumerSpec{Stream: "SIGNALS", Durable: "x", MaxDeliver: -1}, "ConsumerSpec.MaxDeliver"},
		{"negative workers", natsx.ConsumerSpec{Stream: "SIGNALS", Durable: "x", Workers: -2}, "ConsumerSpec.Workers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := natsx.Consume(testCtx(t), e.js, tt.spec, h, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Consume = %v, want error naming %s", err, tt.want)
			}
		})
	}
}
