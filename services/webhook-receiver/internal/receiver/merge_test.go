package receiver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	hubspotv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/hubspot/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/natsx/natstest"
)

// gatedPublisher is a real natsx.Publisher whose first commit
// (PublishMerged) waits for gate, so that requests queue up behind it, and
// which counts commits and lone publishes.
type gatedPublisher struct {
	*natsx.Publisher
	gate          chan struct{}
	once          sync.Once
	commits, lone atomic.Int32
}

func (g *gatedPublisher) PublishMerged(ctx context.Context, msgs []*nats.Msg) (natsx.BatchResult, error) {
	g.once.Do(func() { <-g.gate })
	g.commits.Add(1)
	return g.Publisher.PublishMerged(ctx, msgs)
}

func (g *gatedPublisher) PublishBatch(ctx context.Context, msgs []*nats.Msg) (natsx.BatchResult, error) {
	g.lone.Add(1)
	return g.Publisher.PublishBatch(ctx, msgs)
}

func newGated(t *testing.T) (*gatedPublisher, jetstream.Stream) {
	t.Helper()
	srv := natstest.Run(t)
	js := srv.JetStream(t)
	stream, err := js.Stream(context.Background(), natsx.StreamHubSpot)
	if err != nil {
		t.Fatal(err)
	}
	pub := natsx.NewPublisher(srv.Connect(t), js, tracenoop.NewTracerProvider())
	return &gatedPublisher{Publisher: pub, gate: make(chan struct{})}, stream
}

func testMsgs(t *testing.T, ids ...int) []*nats.Msg {
	t.Helper()
	out := make([]*nats.Msg, len(ids))
	for i, id := range ids {
		m, err := natsx.NewMsg(context.Background(), natsx.HubSpotEventSubject("777", "contact", "creation"),
			MsgID("777", int64(id)), &hubspotv1.HubSpotEvent{EventId: int64(id)})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = m
	}
	return out
}

func span(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

type outcome struct {
	res natsx.BatchResult
	err error
}

// start publishes msgs through m in the background.
func start(m *merger, ctx context.Context, msgs []*nats.Msg) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		res, err := m.publish(ctx, msgs)
		ch <- outcome{res, err}
	}()
	return ch
}

// waitQueued waits until n requests wait in m's queue and slots commit
// slots are taken.
func waitQueued(t *testing.T, m *merger, n, slots int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m.mu.Lock()
		q, s := len(m.queue), m.inflight
		m.mu.Unlock()
		if q == n && s == slots {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued and %d slots taken, want %d and %d", q, s, n, slots)
		}
		time.Sleep(time.Millisecond)
	}
}

func streamCount(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func TestMergerMergesRequestsQueuedBehindACommit(t *testing.T) {
	t.Parallel()
	pub, stream := newGated(t)
	m := newMerger(pub, natsx.MaxBatchSize, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	first := start(m, ctx, testMsgs(t, span(1, 10)...))
	waitQueued(t, m, 0, 1) // the first one is being committed
	var rest []<-chan outcome
	for i := range 5 {
		rest = append(rest, start(m, ctx, testMsgs(t, span(100*(i+1), 100)...)))
	}
	waitQueued(t, m, 5, 1)
	close(pub.gate)

	if o := <-first; o.err != nil || len(o.res.Duplicates) != 10 || countTrue(o.res.Duplicates) != 0 {
		t.Fatalf("first request: %+v", o)
	}
	for i, ch := range rest {
		if o := <-ch; o.err != nil || len(o.res.Duplicates) != 100 || countTrue(o.res.Duplicates) != 0 {
			t.Fatalf("request %d: %+v", i, o)
		}
	}
	if got := pub.commits.Load(); got != 2 {
		t.Errorf("%d commits, want 2: the first request, then the 5 queued in 1", got)
	}
	if n := streamCount(t, stream); n != 510 {
		t.Errorf("stream holds %d messages, want 510", n)
	}
	assertIdle(t, m)
}

func TestMergerSplitsABatchWithAStoredID(t *testing.T) {
	t.Parallel()
	pub, stream := newGated(t)
	m := newMerger(pub, natsx.MaxBatchSize, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	first := start(m, ctx, testMsgs(t, 1, 2, 3))
	waitQueued(t, m, 0, 1)
	b := start(m, ctx, testMsgs(t, 10, 11, 12)) // new
	c := start(m, ctx, testMsgs(t, 12, 13))     // 12 is also in b
	d := start(m, ctx, testMsgs(t, 3, 20))      // 3 is stored by the first request
	waitQueued(t, m, 3, 1)
	close(pub.gate)

	if o := <-first; o.err != nil || countTrue(o.res.Duplicates) != 0 {
		t.Fatalf("first request: %+v", o)
	}
	dups := 0
	for name, ch := range map[string]<-chan outcome{"b": b, "c": c, "d": d} {
		o := <-ch
		if o.err != nil {
			t.Fatalf("request %s: %v", name, o.err)
		}
		dups += countTrue(o.res.Duplicates)
		if name == "d" && !o.res.Duplicates[0] {
			t.Errorf("request d: event 3 not reported as a duplicate: %v", o.res.Duplicates)
		}
	}
	if c, l := pub.commits.Load(), pub.lone.Load(); c != 2 || l != 3 {
		t.Errorf("%d commits and %d lone publishes, want 2 (the first request; the 3 queued, refused) and 3", c, l)
	}
	if dups != 2 {
		t.Errorf("%d duplicates reported, want 2 (12 once, 3)", dups)
	}
	if n := streamCount(t, stream); n != 8 {
		t.Errorf("stream holds %d messages, want each of the 8 ids once", n)
	}
}

func TestMergerGivesUpOnARequestWhoseDeadlinePassesInTheQueue(t *testing.T) {
	t.Parallel()
	pub, stream := newGated(t)
	m := newMerger(pub, natsx.MaxBatchSize, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	first := start(m, ctx, testMsgs(t, 1))
	waitQueued(t, m, 0, 1)
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	late := start(m, short, testMsgs(t, 2))
	o := <-late
	if !errors.Is(o.err, natsx.ErrUnavailable) {
		t.Fatalf("queued past its deadline: err = %v, want ErrUnavailable", o.err)
	}
	after := start(m, ctx, testMsgs(t, 3))
	waitQueued(t, m, 1, 1)
	close(pub.gate)
	for _, ch := range []<-chan outcome{first, after} {
		if o := <-ch; o.err != nil {
			t.Fatal(o.err)
		}
	}
	if n := streamCount(t, stream); n != 2 {
		t.Errorf("stream holds %d messages, want 2 (not the one given up)", n)
	}
}

// TestMergerUnderConcurrency runs many requests through two commit slots:
// every one is answered, every event stored once.
func TestMergerUnderConcurrency(t *testing.T) {
	t.Parallel()
	pub, stream := newGated(t)
	close(pub.gate)
	m := newMerger(pub, 250, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		// Every other request repeats the previous one's last 5 ids.
		msgs := testMsgs(t, span(i*50-5*(i%2), 50)...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := m.publish(ctx, msgs)
			if err == nil && len(res.Duplicates) != 50 {
				err = fmt.Errorf("%d duplicate flags for 50 messages", len(res.Duplicates))
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := streamCount(t, stream); n != 20*95 {
		t.Errorf("stream holds %d messages, want %d", n, 20*95)
	}
	assertIdle(t, m)
}

func assertIdle(t *testing.T, m *merger) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inflight != 0 || len(m.queue) != 0 {
		t.Errorf("merger left with %d slots taken, %d queued", m.inflight, len(m.queue))
	}
}

// secondGated holds the second commit until the test lets it through.
type secondGated struct {
	*natsx.Publisher
	first, second chan struct{}
	entered       chan struct{} // the second commit has begun
	n             atomic.Int32
}

func (g *secondGated) PublishMerged(ctx context.Context, msgs []*nats.Msg) (natsx.BatchResult, error) {
	switch g.n.Add(1) {
	case 1:
		<-g.first
	case 2:
		close(g.entered)
		<-g.second
	}
	return g.Publisher.PublishMerged(ctx, msgs)
}

func TestMergerCommitSurvivesItsFirstCallerLeaving(t *testing.T) {
	t.Parallel()
	base, stream := newGated(t)
	pub := &secondGated{Publisher: base.Publisher, first: make(chan struct{}), second: make(chan struct{}), entered: make(chan struct{})}
	m := newMerger(pub, natsx.MaxBatchSize, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	first := start(m, ctx, testMsgs(t, span(1, 10)...))
	waitQueued(t, m, 0, 1)
	ctxA, cancelA := context.WithCancel(ctx)
	a := start(m, ctxA, testMsgs(t, span(100, 10)...))
	waitQueued(t, m, 1, 1)
	b := start(m, ctx, testMsgs(t, span(200, 10)...))
	waitQueued(t, m, 2, 1)
	close(pub.first)
	<-pub.entered // A commits A and B together
	cancelA()     // A's caller goes away mid-commit
	close(pub.second)

	if o := <-first; o.err != nil {
		t.Fatalf("first request: %v", o.err)
	}
	if o := <-b; o.err != nil || len(o.res.Duplicates) != 10 {
		t.Fatalf("B failed because A's caller left: %+v", o)
	}
	<-a // A's answer no longer matters to anyone; its events are stored either way
	if n := streamCount(t, stream); n != 30 {
		t.Errorf("stream holds %d messages, want 30", n)
	}
	assertIdle(t, m)
}
