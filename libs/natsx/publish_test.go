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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/signalbridge/signalbridge/libs/natsx"
)

func TestPublishBatchStoresAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	pub := natsx.NewPublisher(e.nc, e.js, tp)

	ids := idRange("sig", 1, 50)
	msgs := signalMsgs(t, "42", ids...)
	res, err := pub.PublishBatch(testCtx(t), msgs)
	if err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}
	if res.Stream != natsx.StreamSignals || res.LastSeq != 50 {
		t.Errorf("result stream %q last seq %d, want SIGNALS 50", res.Stream, res.LastSeq)
	}
	if len(res.Duplicates) != 50 || slices.Contains(res.Duplicates, true) {
		t.Errorf("Duplicates = %v, want 50 x false", res.Duplicates)
	}

	stored := readStream(t, e.js, natsx.StreamSignals)
	if got := msgIDs(stored); !slices.Equal(got, ids) {
		t.Fatalf("stored ids = %v, want %v", got, ids)
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "send signals.v1.{portal}.received" || spans[0].SpanKind() != trace.SpanKindProducer {
		t.Fatalf("spans = %v, want one producer span 'send signals.v1.{portal}.received'", spanNames(spans))
	}
	for i, m := range stored {
		if m.Subject != "signals.v1.42.received" {
			t.Errorf("msg %d subject = %q", i, m.Subject)
		}
		if got := m.Header.Get(natsx.HeaderEventType); got != "google.protobuf.StringValue" {
			t.Errorf("msg %d event type = %q", i, got)
		}
		if got := m.Header.Get(natsx.HeaderContentType); got != natsx.ContentTypeProtobuf {
			t.Errorf("msg %d content type = %q", i, got)
		}
		if string(m.Data) != string(msgs[i].Data) {
			t.Errorf("msg %d payload differs", i)
		}
		if m.Header.Get("Nats-Batch-Id") == "" {
			t.Errorf("msg %d was not published in an atomic batch (no Nats-Batch-Id)", i)
		}
		// The stored trace context is the producer span's.
		if got, want := m.Header.Get("traceparent"), traceparentOf(spans[0].SpanContext()); got != want {
			t.Errorf("msg %d traceparent = %q, want producer span %q", i, got, want)
		}
	}
	for i, m := range msgs {
		if m.Header.Get("Nats-Batch-Id") != "" || m.Header.Get("traceparent") != "" {
			t.Fatalf("caller's msgs[%d] was modified: %v", i, m.Header)
		}
	}
}

func TestPublishBatchDuplicateIDsWithinInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := natsx.NewPublisher(e.nc, e.js, nil)

	msgs := signalMsgs(t, "42", "a", "b", "a", "c", "b")
	res, err := pub.PublishBatch(testCtx(t), msgs)
	if err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}
	if want := []bool{false, false, true, false, true}; !slices.Equal(res.Duplicates, want) {
		t.Errorf("Duplicates = %v, want %v", res.Duplicates, want)
	}
	if got := msgIDs(readStream(t, e.js, natsx.StreamSignals)); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("stored ids = %v, want [a b c]", got)
	}
}

// A client retrying a batch of which part is stored already: the server
// refuses the atomic batch (10201) and PublishBatch stores the new ones.
func TestPublishBatchRetryOfHalfNewBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := natsx.NewPublisher(e.nc, e.js, nil)
	ctx := testCtx(t)

	if _, err := pub.PublishBatch(ctx, signalMsgs(t, "42", idRange("s", 1, 5)...)); err != nil {
		t.Fatalf("first batch: %v", err)
	}
	res, err := pub.PublishBatch(ctx, signalMsgs(t, "42", idRange("s", 4, 8)...))
	if err != nil {
		t.Fatalf("half-new batch: %v", err)
	}
	if want := []bool{true, true, false, false, false}; !slices.Equal(res.Duplicates, want) {
		t.Errorf("Duplicates = %v, want %v", res.Duplicates, want)
	}
	if res.Stream != natsx.StreamSignals || res.LastSeq != 8 {
		t.Errorf("result stream %q last seq %d, want SIGNALS 8", res.Stream, res.LastSeq)
	}
	// The same batch again: every message is a duplicate.
	res, err = pub.PublishBatch(ctx, signalMsgs(t, "42", idRange("s", 4, 8)...))
	if err != nil {
		t.Fatalf("repeated batch: %v", err)
	}
	if want := []bool{true, true, true, true, true}; !slices.Equal(res.Duplicates, want) {
		t.Errorf("repeat Duplicates = %v, want %v", res.Duplicates, want)
	}
	if got, want := msgIDs(readStream(t, e.js, natsx.StreamSignals)), idRange("s", 1, 8); !slices.Equal(got, want) {
		t.Fatalf("stored ids = %v, want each of %v once", got, want)
	}
}

func TestPublishBatchConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := natsx.NewPublisher(e.nc, e.js, nil)
	ctx := testCtx(t)

	const goroutines, batches, size = 8, 5, 40
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*batches)
	for g := range goroutines {
		wg.Go(func() {
			for b := range batches {
				ids := idRange(fmt.Sprintf("g%d-b%d", g, b), 1, size)
				res, err := pub.PublishBatch(ctx, signalMsgs(t, fmt.Sprint(g), ids...))
				if err != nil {
					errs <- fmt.Errorf("goroutine %d batch %d: %w", g, b, err)
					continue
				}
				if slices.Contains(res.Duplicates, true) {
					errs <- fmt.Errorf("goroutine %d batch %d: unexpected duplicates %v", g, b, res.Duplicates)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	stored := readStream(t, e.js, natsx.StreamSignals)
	if len(stored) != goroutines*batches*size {
		t.Fatalf("stored %d messages, want %d", len(stored), goroutines*batches*size)
	}
	// Each batch is contiguous (atomic) and every id is stored once.
	seen := map[string]bool{}
	for i := 0; i < len(stored); i += size {
		chunk := msgIDs(stored[i : i+size])
		prefix := chunk[0][:len(chunk[0])-len("-1")]
		if want := idRange(prefix, 1, size); !slices.Equal(chunk, want) {
			t.Fatalf("messages %d..%d are not one whole batch: %v", i, i+size-1, chunk)
		}
		for _, id := range chunk {
			if seen[id] {
				t.Fatalf("id %s stored twice", id)
			}
			seen[id] = true
		}
	}
}

func TestPublishBatchInvalidInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := natsx.NewPublisher(e.nc, e.js, nil)

	noID := signalMsgs(t, "42", "a", "b")
	noID[1].Header.Del(natsx.HeaderMsgID)
	tests := []struct {
		name    string
		msgs    []*nats.Msg
		wantErr error
		wantMsg string
	}{
		{"empty", nil, natsx.ErrInvalidMsg, "no messages"},
		{"over limit", signalMsgs(t, "42", idRange("x", 1, natsx.MaxBatchSize+1)...), natsx.ErrBatchTooLarge, "1001 messages"},
		{"missing id", noID, natsx.ErrInvalidMsg, "msgs[1]"},
		{"nil message", []*nats.Msg{nil}, natsx.ErrInvalidMsg, "msgs[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pub.PublishBatch(testCtx(t), tt.msgs)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("PublishBatch = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
	if stored := readStream(t, e.js, natsx.StreamSignals); len(stored) != 0 {
		t.Fatalf("invalid batches stored %d messages", len(stored))
	}
}

// The largest allowed batch goes through in one piece.
func TestPublishBatchMaxSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := natsx.NewPublisher(e.nc, e.js, nil)
	res, err := pub.PublishBatch(testCtx(t), signalMsgs(t, "42", idRange("m", 1, natsx.MaxBatchSize)...))
	if err != nil {
		t.Fatalf("PublishBatch(%d): %v", natsx.MaxBatchSize, err)
	}
	if res.LastSeq != natsx.MaxBatchSize {
		t.Fatalf("last seq = %d, want %d", res.LastSeq, natsx.MaxBatchSize)
	}
}

func TestPublishBatchRejectedWhenNoStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := natsx.NewPublisher(e.nc, e.js, nil)
	ctx := testCtx(t)
	// A stream without atomic publish refuses the batch with a reason.
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "PLAIN", Subjects: []string{"plain.>"}}); err != nil {
		t.Fatal(err)
	}
	msgs := []*nats.Msg{
		{Subject: "plain.a", Header: nats.Header{natsx.HeaderMsgID: {"1"}}},
		{Subject: "plain.b", Header: nats.Header{natsx.HeaderMsgID: {"2"}}},
	}
	_, err := pub.PublishBatch(ctx, msgs)
	if !errors.Is(err, natsx.ErrRejected) || !strings.Contains(err.Error(), "atomic publish is disabled") {
		t.Fatalf("PublishBatch to a stream without atomic publish = %v, want ErrRejected (disabled)", err)
	}
}

// A batch whose subjects belong to two streams cannot commit: the stream
// that gets the commit never saw the batch start. Nothing is stored.
func TestPublishBatchAcrossStreamsRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := natsx.NewPublisher(e.nc, e.js, nil)
	msgs := []*nats.Msg{
		signalMsgs(t, "42", "sig")[0],
		{Subject: natsx.ScoreUpdatedSubject("42"), Header: nats.Header{natsx.HeaderMsgID: {"score"}}},
	}
	_, err := pub.PublishBatch(testCtx(t), msgs)
	if !errors.Is(err, natsx.ErrRejected) || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("PublishBatch across streams = %v, want ErrRejected (batch incomplete)", err)
	}
	for _, stream := range []string{natsx.StreamSignals, natsx.StreamScores} {
		if n := len(readStream(t, e.js, stream)); n != 0 {
			t.Errorf("stream %s stored %d messages of the refused batch", stream, n)
		}
	}
}

// Stop the server: publishing fails fast with ErrUnavailable. Restart it:
// publishing works again and what was acknowledged before is still there.
func TestPublishOutageAndRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := natsx.NewPublisher(e.nc, e.js, nil)
	ctx := testCtx(t)

	before := idRange("before", 1, 20)
	if _, err := pub.PublishBatch(ctx, signalMsgs(t, "42", before...)); err != nil {
		t.Fatalf("PublishBatch before outage: %v", err)
	}
	single := signalMsgs(t, "42", "single-before")[0]
	if _, err := pub.Publish(ctx, single); err != nil {
		t.Fatalf("Publish before outage: %v", err)
	}

	e.srv.Stop()

	// ctx with a deadline far beyond what a prompt failure needs.
	downCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := pub.PublishBatch(downCtx, signalMsgs(t, "42", "during-1", "during-2")); !errors.Is(err, natsx.ErrUnavailable) {
		t.Fatalf("PublishBatch with server down = %v, want ErrUnavailable", err)
	}
	if _, err := pub.Publish(downCtx, signalMsgs(t, "42", "during-3")[0]); !errors.Is(err, natsx.ErrUnavailable) {
		t.Fatalf("Publish with server down = %v, want ErrUnavailable", err)
	}
	if downCtx.Err() != nil {
		t.Fatalf("publishing with the server down waited until the deadline: %v", downCtx.Err())
	}

	e.srv.Restart(t)
	after := idRange("after", 1, 10)
	var lastErr error
	eventually(t, "publishing after restart", func() bool {
		_, lastErr = pub.PublishBatch(ctx, signalMsgs(t, "42", after...))
		return lastErr == nil
	})

	stored := msgIDs(readStream(t, e.js, natsx.StreamSignals))
	for _, id := range append(append(slices.Clone(before), "single-before"), after...) {
		if !slices.Contains(stored, id) {
			t.Errorf("message %s missing after restart (stored %v)", id, stored)
		}
	}
	if len(stored) != len(before)+1+len(after) {
		t.Errorf("stored %d messages, want %d: %v", len(stored), len(before)+1+len(after), stored)
	}
}

// Batches in flight when the server goes away fail with ErrUnavailable
// (not a hang, not another error), and every acknowledged batch survives
// the restart.
func TestPublishBatchInFlightDuringOutage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := natsx.NewPublisher(e.nc, e.js, nil)
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Second)
	defer cancel()

	const workers = 4
	var (
		mu      sync.Mutex
		acked   []string
		started sync.WaitGroup
		wg      sync.WaitGroup
	)
	errs := make([]error, workers)
	started.Add(workers)
	for w := range workers {
		wg.Go(func() {
			for b := 0; ; b++ {
				ids := idRange(fmt.Sprintf("w%d-b%d", w, b), 1, 100)
				_, err := pub.PublishBatch(ctx, signalMsgs(t, "42", ids...))
				if b == 0 {
					started.Done()
				}
				if err != nil {
					errs[w] = err
					return
				}
				mu.Lock()
				acked = append(acked, ids...)
				mu.Unlock()
			}
		})
	}
	started.Wait()
	e.srv.Stop()
	wg.Wait()
	for w, err := range errs {
		if !errors.Is(err, natsx.ErrUnavailable) {
			t.Errorf("worker %d stopped with %v, want ErrUnavailable", w, err)
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("publishers hung until the deadline: %v", ctx.Err())
	}

	e.srv.Restart(t)
	eventually(t, "reconnect", e.nc.IsConnected)
	stored := map[string]bool{}
	for _, id := range msgIDs(readStream(t, e.js, natsx.StreamSignals)) {
		stored[id] = true
	}
	for _, id := range acked {
		if !stored[id] {
			t.Fatalf("acknowledged message %s lost in the restart", id)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no batch was acknowledged before the outage")
	}
}

func TestPublishSingle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := natsx.NewPublisher(e.nc, e.js, nil)
	ctx := testCtx(t)
	msg := signalMsgs(t, "7", "one")[0]
	ack, err := pub.Publish(ctx, msg)
	if err != nil || ack.Stream != natsx.StreamSignals || ack.Sequence != 1 || ack.Duplicate {
		t.Fatalf("Publish = %+v, %v; want SIGNALS seq 1", ack, err)
	}
	ack, err = pub.Publish(ctx, msg)
	if err != nil || !ack.Duplicate {
		t.Fatalf("Publish again = %+v, %v; want duplicate", ack, err)
	}
	_, err = pub.Publish(ctx, &nats.Msg{Subject: "nowhere.at.all", Data: []byte("x")})
	if !errors.Is(err, natsx.ErrUnavailable) {
		t.Fatalf("Publish to a subject no stream takes = %v, want ErrUnavailable (no responders)", err)
	}
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name()
	}
	return names
}

func traceparentOf(sc trace.SpanContext) string {
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}
