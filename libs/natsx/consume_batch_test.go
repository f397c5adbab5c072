package natsx_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/telemetry/telemetrytest"
)

func startBatchConsumer(t *testing.T, e env, spec natsx.BatchSpec, h natsx.BatchHandler) *natsx.BatchConsumer {
	t.Helper()
	if spec.Stream == "" {
		spec.Stream = natsx.StreamSignals
	}
	c, err := natsx.ConsumeBatch(testCtx(t), e.js, spec, h, nil)
	if err != nil {
		t.Fatalf("ConsumeBatch: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return c
}

// batches records the batches a handler got.
type batches struct {
	calls
	mu    sync.Mutex
	sizes []int
}

func (b *batches) record(msgs []jetstream.Msg) []uint64 {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(msgs))
	b.mu.Unlock()
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = b.calls.record(m)
	}
	return out
}

func (b *batches) all() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.sizes)
}

func TestConsumeBatchAcks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := idRange("m", 1, 25)
	publish(t, e, ids...)
	var got batches
	startBatchConsumer(t, e, natsx.BatchSpec{Durable: "test-batch-ack", Description: "batch test", MaxMessages: 10, MaxWait: 50 * time.Millisecond},
		func(_ context.Context, msgs []jetstream.Msg) []error {
			got.record(msgs)
			return nil
		})
	info := waitAcked(t, e, "test-batch-ack", 25)
	for _, id := range ids {
		if d := got.of(id); len(d) != 1 || d[0] != 1 {
			t.Errorf("message %s handled with deliveries %v, want once", id, d)
		}
	}
	total := 0
	for _, n := range got.all() {
		if n < 1 || n > 10 {
			t.Errorf("a batch of %d messages, want 1..10", n)
		}
		total += n
	}
	if total != 25 {
		t.Errorf("batches %v hold %d messages, want 25", got.all(), total)
	}
	cfg := info.Config
	if cfg.AckPolicy != jetstream.AckExplicitPolicy || cfg.MaxDeliver != natsx.DefaultMaxDeliver || cfg.AckWait != natsx.DefaultAckWait ||
		cfg.MaxAckPending != 30 || cfg.Description != "batch test" {
		t.Errorf("consumer config = ack %v maxDeliver %d ackWait %s maxAckPending %d description %q",
			cfg.AckPolicy, cfg.MaxDeliver, cfg.AckWait, cfg.MaxAckPending, cfg.Description)
	}
	if info.NumRedelivered != 0 {
		t.Errorf("NumRedelivered = %d, want 0", info.NumRedelivered)
	}
}

func TestConsumeBatchNakRedeliversOnlyTheFailed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	publish(t, e, "ok-1", "flaky", "ok-2")
	var got batches
	startBatchConsumer(t, e, natsx.BatchSpec{Durable: "test-batch-nak", MaxMessages: 3, MaxWait: time.Second, Backoff: fastBackoff},
		func(_ context.Context, msgs []jetstream.Msg) []error {
			deliveries := got.record(msgs)
			errs := make([]error, len(msgs))
			for i, m := range msgs {
				if m.Headers().Get(natsx.HeaderMsgID) == "flaky" && deliveries[i] == 1 {
					errs[i] = errors.New("downstream timeout")
				}
			}
			return errs
		})
	waitAcked(t, e, "test-batch-nak", 3)
	if d := got.of("flaky"); len(d) != 2 || d[0] != 1 || d[1] != 2 {
		t.Fatalf("flaky deliveries = %v, want [1 2]", d)
	}
	for _, id := range []string{"ok-1", "ok-2"} {
		if d := got.of(id); len(d) != 1 {
			t.Errorf("%s deliveries = %v, want one", id, d)
		}
	}
	if dlq := readStream(t, e.js, natsx.StreamDLQ); len(dlq) != 0 {
		t.Fatalf("transient failure reached the DLQ: %d messages", len(dlq))
	}
}

// A panic, or an answer that does not say how each message went, fails the
// whole batch transiently.
func TestConsumeBatchHandlerMistakesAreTransient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	publish(t, e, "a", "b")
	var got batches
	startBatchConsumer(t, e, natsx.BatchSpec{Durable: "test-batch-panic", MaxMessages: 2, MaxWait: time.Second, Backoff: fastBackoff},
		func(_ context.Context, msgs []jetstream.Msg) []error {
			switch got.record(msgs)[0] {
			case 1:
				panic("nil map write")
			case 2:
				return []error{nil} // one outcome for two messages
			}
			return nil
		})
	waitAcked(t, e, "test-batch-panic", 2)
	for _, id := range []string{"a", "b"} {
		if d := got.of(id); fmt.Sprint(d) != "[1 2 3]" {
			t.Errorf("%s deliveries = %v, want [1 2 3] (panic, wrong answer, success)", id, d)
		}
	}
}

func TestConsumeBatchPermanentGoesToDLQ(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	publish(t, e, "fine-1", "poison", "fine-2")
	original := readStream(t, e.js, natsx.StreamSignals)[1]
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	var got batches
	startBatchConsumer(t, e, natsx.BatchSpec{Durable: "test-batch-perm", MaxMessages: 3, MaxWait: time.Second, Backoff: fastBackoff, MeterProvider: mp},
		func(_ context.Context, msgs []jetstream.Msg) []error {
			got.record(msgs)
			errs := make([]error, len(msgs))
			for i, m := range msgs {
				if m.Headers().Get(natsx.HeaderMsgID) == "poison" {
					errs[i] = natsx.Permanent(errors.New("bad payload:\nfield account.domain is empty"))
				}
			}
			return errs
		})
	info := waitAcked(t, e, "test-batch-perm", 3)
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
	if d.Subject != "dlq.SIGNALS.test-batch-perm" || string(d.Data) != string(original.Data) {
		t.Errorf("DLQ subject = %q, payload equal = %v", d.Subject, string(d.Data) == string(original.Data))
	}
	want := map[string]string{
		natsx.HeaderMsgID:         "dlq:SIGNALS:2",
		natsx.HeaderDLQReason:     "bad payload: field account.domain is empty",
		natsx.HeaderDLQSubject:    "signals.v1.42.received",
		natsx.HeaderDLQStream:     "SIGNALS",
		natsx.HeaderDLQStreamSeq:  "2",
		natsx.HeaderDLQConsumer:   "test-batch-perm",
		natsx.HeaderDLQDeliveries: "1",
		natsx.HeaderDLQMsgID:      "poison",
		natsx.HeaderEventType:     "google.protobuf.StringValue",
	}
	checkDLQHeaders(t, d, want)
	if d.Header.Get("Nats-Batch-Id") != "" {
		t.Errorf("DLQ copy kept the original's batch headers: %v", d.Header)
	}

	// The metrics say the same.
	consumer := attribute.String("messaging.consumer.group.name", "test-batch-perm")
	counts := map[string]int64{}
	for _, o := range []string{"acked", "dead_lettered", "retried"} {
		counts[o] = telemetrytest.Int64(t, reader, "signalbridge.natsx.consume.messages", consumer, attribute.String("outcome", o))
	}
	batchCount := telemetrytest.HistogramCount(t, reader, "signalbridge.natsx.consume.batch.size")
	if counts["acked"] != 2 || counts["dead_lettered"] != 1 || counts["retried"] != 0 || batchCount == 0 {
		t.Errorf("metrics: messages by outcome %v, %d batches recorded", counts, batchCount)
	}
}

func TestConsumeBatchMaxDeliverForwardedToDLQ(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	publish(t, e, "always-fails", "fine")
	var got batches
	startBatchConsumer(t, e, natsx.BatchSpec{Durable: "test-batch-maxdel", MaxDeliver: 3, MaxMessages: 2, MaxWait: 20 * time.Millisecond, Backoff: fastBackoff},
		func(_ context.Context, msgs []jetstream.Msg) []error {
			got.record(msgs)
			errs := make([]error, len(msgs))
			for i, m := range msgs {
				if m.Headers().Get(natsx.HeaderMsgID) == "always-fails" {
					errs[i] = errors.New("hubspot unavailable")
				}
			}
			return errs
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
		natsx.HeaderDLQConsumer:   "test-batch-maxdel",
		natsx.HeaderDLQDeliveries: "3",
		natsx.HeaderDLQMsgID:      "always-fails",
	}
	checkDLQHeaders(t, d, want)
	if n := len(got.of("always-fails")); n != 3 {
		t.Errorf("handled %d times, want MaxDeliver = 3", n)
	}
	if n := len(got.of("fine")); n != 1 {
		t.Errorf("the good message of the batch was handled %d times, want once", n)
	}
}

// The server goes away while a batch is being handled and comes back: every
// message, before and after the outage, is handled and acknowledged.
func TestConsumeBatchServerRestartLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	before := idRange("before", 1, 300)
	publish(t, e, before...)
	var got batches
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	startBatchConsumer(t, e, natsx.BatchSpec{Durable: "test-batch-restart", MaxMessages: 50, MaxWait: 20 * time.Millisecond,
		AckWait: 2 * time.Second, Backoff: fastBackoff, Concurrency: 2},
		func(_ context.Context, msgs []jetstream.Msg) []error {
			got.record(msgs)
			once.Do(func() {
				close(started)
				<-release
			})
			return nil
		})
	<-started
	e.srv.Stop()
	e.srv.Restart(t)
	close(release)
	after := idRange("after", 1, 300)
	eventually(t, "publishing after the restart", func() bool {
		_, err := natsx.NewPublisher(e.nc, e.js, nil).PublishBatch(testCtx(t), signalMsgs(t, "42", after...))
		return err == nil
	})
	waitAcked(t, e, "test-batch-restart", 600)
	eventually(t, "nothing pending", func() bool {
		info := consumerInfo(t, e, "test-batch-restart")
		return info.NumPending == 0 && info.NumAckPending == 0
	})
	var missing []string
	for _, id := range append(before, after...) {
		if len(got.of(id)) == 0 {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d messages never handled, first %s", len(missing), missing[0])
	}
	if dlq := readStream(t, e.js, natsx.StreamDLQ); len(dlq) != 0 {
		t.Fatalf("%d messages dead-lettered", len(dlq))
	}
}

// When the consumer's context ends, the batch in hand finishes and is
// acknowledged; messages not yet handed to the handler are given back.
func TestConsumeBatchContextCancelFinishesTheBatchInHand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	publish(t, e, "slow")
	started := make(chan struct{})
	release := make(chan struct{})
	var handlerCtxErr error
	var got batches
	ctx, cancel := context.WithCancel(testCtx(t))
	c, err := natsx.ConsumeBatch(ctx, e.js, natsx.BatchSpec{Stream: natsx.StreamSignals, Durable: "test-batch-stop", MaxMessages: 1},
		func(ctx context.Context, msgs []jetstream.Msg) []error {
			got.record(msgs)
			close(started)
			<-release
			handlerCtxErr = ctx.Err()
			return nil
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	publish(t, e, "later") // received while the first batch runs (one at a time)
	eventually(t, "the second message delivered", func() bool { return consumerInfo(t, e, "test-batch-stop").NumAckPending == 2 })
	cancel()

	// While the handler runs, a Stop whose ctx ends reports that it has not
	// finished.
	cancelled, cancelStop := context.WithCancel(context.Background())
	cancelStop()
	if err := c.Stop(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with a batch still running and ctx cancelled = %v, want context.Canceled", err)
	}
	close(release)
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	if err := c.Stop(stopCtx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if handlerCtxErr != nil {
		t.Errorf("handler context was cancelled with the consumer's: %v", handlerCtxErr)
	}
	info := consumerInfo(t, e, "test-batch-stop")
	if info.AckFloor.Stream != 1 {
		t.Errorf("after Stop, ack floor = %d, want 1 (the batch in hand acknowledged)", info.AckFloor.Stream)
	}
	if d := got.of("later"); len(d) != 0 {
		t.Errorf("a message received after the stop began was handled: %v", d)
	}
	// "later" was given back (nak'd), not left to time out after AckWait
	// (30s): the next consumer on the durable gets it at once.
	var next batches
	startBatchConsumer(t, e, natsx.BatchSpec{Durable: "test-batch-stop", MaxMessages: 1},
		func(_ context.Context, msgs []jetstream.Msg) []error {
			next.record(msgs)
			return nil
		})
	waitAcked(t, e, "test-batch-stop", 2)
	if d := next.of("later"); fmt.Sprint(d) != "[2]" {
		t.Errorf("after the restart, \"later\" delivered %v, want once more ([2])", d)
	}
}

func TestConsumeBatchSpanLinksTheMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	pub := natsx.NewPublisher(e.nc, e.js, tp)
	var producers []trace.SpanContext
	for _, m := range signalMsgs(t, "42", "t1", "t2", "t3") {
		ctx, root := tp.Tracer("test").Start(testCtx(t), "request "+m.Header.Get(natsx.HeaderMsgID))
		if _, err := pub.Publish(ctx, m); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		root.End()
	}
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindProducer {
			producers = append(producers, s.SpanContext())
		}
	}
	handled := make(chan trace.SpanContext, 1)
	startBatchConsumer(t, e, natsx.BatchSpec{Durable: "test-batch-trace", MaxMessages: 3, MaxWait: 5 * time.Second, TracerProvider: tp},
		func(ctx context.Context, msgs []jetstream.Msg) []error {
			handled <- trace.SpanContextFromContext(ctx)
			return nil
		})
	inHandler := <-handled
	waitAcked(t, e, "test-batch-trace", 3)

	var consumer sdktrace.ReadOnlySpan
	eventually(t, "the batch span to end", func() bool {
		for _, s := range rec.Ended() {
			if s.SpanKind() == trace.SpanKindConsumer {
				consumer = s
			}
		}
		return consumer != nil
	})
	if consumer.Name() != "process signals.v1.{portal}.received" || consumer.Parent().IsValid() {
		t.Errorf("batch span %q, parent %v: want a new root named after the subject template", consumer.Name(), consumer.Parent())
	}
	if inHandler.SpanID() != consumer.SpanContext().SpanID() {
		t.Errorf("handler context does not carry the batch span")
	}
	var linked []string
	for _, l := range consumer.Links() {
		linked = append(linked, l.SpanContext.SpanID().String())
		set := attribute.NewSet(l.Attributes...)
		if id, _ := set.Value("messaging.message.id"); !strings.HasPrefix(id.AsString(), "t") {
			t.Errorf("link without the message id: %v", l.Attributes)
		}
	}
	var want []string
	for _, p := range producers {
		want = append(want, p.SpanID().String())
	}
	slices.Sort(linked)
	slices.Sort(want)
	if len(want) != 3 || !slices.Equal(linked, want) {
		t.Errorf("batch span links %v, want the producer spans %v", linked, want)
	}
	attrs := attribute.NewSet(consumer.Attributes()...)
	for k, v := range map[attribute.Key]any{
		"messaging.consumer.group.name": "test-batch-trace",
		"messaging.destination.name":    "signals.v1.{portal}.received",
		"messaging.system":              "nats",
		"messaging.batch.message_count": int64(3),
	} {
		if got, ok := attrs.Value(k); !ok || got.AsInterface() != v {
			t.Errorf("batch span attribute %s = %v, want %v", k, got.AsInterface(), v)
		}
	}
}

func TestConsumeBatchInvalidSpec(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := func(context.Context, []jetstream.Msg) []error { return nil }
	tests := []struct {
		name string
		spec natsx.BatchSpec
		want string
	}{
		{"no stream", natsx.BatchSpec{Durable: "x"}, "BatchSpec.Stream"},
		{"dotted durable", natsx.BatchSpec{Stream: "SIGNALS", Durable: "a.b"}, "BatchSpec.Durable"},
		{"unlimited deliveries", natsx.BatchSpec{Stream: "SIGNALS", Durable: "x", MaxDeliver: -1}, "BatchSpec.MaxDeliver"},
		{"negative batch", natsx.BatchSpec{Stream: "SIGNALS", Durable: "x", MaxMessages: -1}, "BatchSpec.MaxMessages"},
		{"negative concurrency", natsx.BatchSpec{Stream: "SIGNALS", Durable: "x", Concurrency: -2}, "BatchSpec.Concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := natsx.ConsumeBatch(testCtx(t), e.js, tt.spec, h, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ConsumeBatch = %v, want error naming %s", err, tt.want)
			}
		})
	}
}
