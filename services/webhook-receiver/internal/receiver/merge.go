package receiver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/signalbridge/signalbridge/libs/natsx"
)

// errAlone tells a request that the batch it was in was refused because
// the stream already holds one of the ids: it publishes its own events on
// its own, with PublishBatch's one-by-one fallback.
var errAlone = errors.New("receiver: merged batch holds a stored msg id; publish alone")

// merger is a group commit: while maxInflight atomic batches are being
// stored, the events of requests arriving meanwhile queue up and go into the
// next batch together (up to maxMsgs). Each JetStream atomic batch costs the
// server a staging store and an fsync whatever its size, so merging is what
// keeps a stream of small requests fast; an idle receiver still commits each
// request at once, alone.
//
// A request is answered after the commit of the batch holding its events:
// all of them stored or none. There is no goroutine of its own: the
// requests' goroutines take turns committing (the one that finds a free
// slot commits the queue, then hands its slot to the oldest waiting
// request).
type merger struct {
	pub         Publisher
	maxMsgs     int
	maxInflight int

	mu       sync.Mutex
	queue    []*mergeReq
	inflight int // commit slots taken, by committing or promoted requests
}

// mergeReq is one request's events waiting for a commit.
type mergeReq struct {
	ctx  context.Context
	msgs []*nats.Msg
	// slot holds a token while the request is promoted: it is to commit the
	// queue (or hand the slot on). promoted is guarded by merger.mu.
	slot     chan struct{}
	promoted bool
	// done is closed by the committer once res and err are set.
	done chan struct{}
	res  natsx.BatchResult
	err  error
}

func newMerger(pub Publisher, maxMsgs, maxInflight int) *merger {
	return &merger{pub: pub, maxMsgs: maxMsgs, maxInflight: maxInflight}
}

// publish stores msgs atomically, possibly together with other requests'
// messages, and returns when they are stored (Duplicates has one entry per
// message of msgs). Errors are PublishBatch's; a request whose ctx ends
// while it waits in the queue gets an error wrapping natsx.ErrUnavailable
// and nothing of it is stored.
func (m *merger) publish(ctx context.Context, msgs []*nats.Msg) (natsx.BatchResult, error) {
	r := &mergeReq{ctx: ctx, msgs: msgs, slot: make(chan struct{}, 1), done: make(chan struct{})}
	m.mu.Lock()
	m.queue = append(m.queue, r)
	if m.inflight < m.maxInflight {
		m.inflight++
		m.promoteLocked(r)
	}
	m.mu.Unlock()

	expired := ctx.Done()
	for {
		select {
		case <-r.done:
			m.release(r)
			if errors.Is(r.err, errAlone) {
				return m.pub.PublishBatch(ctx, msgs)
			}
			return r.res, r.err
		case <-r.slot:
			m.commit(r)
		case <-expired:
			if m.abandon(r) {
				return natsx.BatchResult{}, fmt.Errorf("receiver: waiting to publish %d events: %w: %w", len(msgs), natsx.ErrUnavailable, ctx.Err())
			}
			// Already in a commit, whose deadline is at most ours: wait
			// for its outcome.
			expired = nil
		}
	}
}

func (m *merger) promoteLocked(r *mergeReq) {
	r.promoted = true
	r.slot <- struct{}{}
}

// release hands on the slot of a request that was promoted but whose events
// went into another request's commit.
func (m *merger) release(r *mergeReq) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.promoted {
		r.promoted = false
		<-r.slot
		m.handOffLocked()
	}
}

// abandon takes r out of the queue if it is still there (handing on the
// slot it may hold) and reports whether it was.
func (m *merger) abandon(r *mergeReq) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, q := range m.queue {
		if q != r {
			continue
		}
		m.queue = append(m.queue[:i], m.queue[i+1:]...)
		if r.promoted {
			r.promoted = false
			<-r.slot
			m.handOffLocked()
		}
		return true
	}
	return false
}

// handOffLocked gives a slot that is being given up to the oldest queued
// request that has none, or frees it.
func (m *merger) handOffLocked() {
	for _, q := range m.queue {
		if !q.promoted {
			m.promoteLocked(q)
			return
		}
	}
	m.inflight--
}

// commit, run by promoted request r, stores the requests at the head of the
// queue, up to maxMsgs messages, as one atomic batch, answers them, and
// hands the slot on.
func (m *merger) commit(r *mergeReq) {
	m.mu.Lock()
	r.promoted = false // its token is taken
	var batch []*mergeReq
	n := 0
	for len(m.queue) > 0 {
		q := m.queue[0]
		if len(batch) > 0 && n+len(q.msgs) > m.maxMsgs {
			break
		}
		m.queue[0] = nil
		m.queue = m.queue[1:]
		if err := q.ctx.Err(); err != nil { // its caller is gone or going
			q.err = fmt.Errorf("receiver: waiting to publish %d events: %w: %w", len(q.msgs), natsx.ErrUnavailable, err)
			close(q.done)
			continue
		}
		batch = append(batch, q)
		n += len(q.msgs)
	}
	m.mu.Unlock()

	if len(batch) > 0 {
		m.commitMerged(batch, n)
	}

	m.mu.Lock()
	m.handOffLocked()
	m.mu.Unlock()
}

// commitMerged stores the messages of the requests of batch as one atomic
// batch. If the stream holds one of their ids already, each request
// publishes its own after the slot is handed on (errAlone), so that the slow
// one-by-one fallback of PublishBatch never holds up the queue.
func (m *merger) commitMerged(batch []*mergeReq, n int) {
	msgs := make([]*nats.Msg, 0, n)
	deadline, hasDeadline := time.Time{}, false
	for _, r := range batch {
		msgs = append(msgs, r.msgs...)
		if d, ok := r.ctx.Deadline(); ok && (!hasDeadline || d.Before(deadline)) {
			deadline, hasDeadline = d, true
		}
	}
	// The first request's context carries the producer span; every message
	// keeps its own request's trace context. Its cancellation is not passed
	// on: one caller going away must not fail the others' commit (its own
	// events may then be stored unacknowledged: HubSpot's retry is a
	// duplicate the stream drops).
	ctx, cancel := context.WithoutCancel(batch[0].ctx), context.CancelFunc(func() {})
	if hasDeadline {
		ctx, cancel = context.WithDeadline(ctx, deadline)
	}
	res, err := m.pub.PublishMerged(ctx, msgs)
	cancel()
	if natsx.IsStoredIDRefusal(err) {
		err = errAlone
	}
	off := 0
	for _, r := range batch {
		r.err = err
		if err == nil {
			r.res = natsx.BatchResult{Duplicates: res.Duplicates[off : off+len(r.msgs) : off+len(r.msgs)], Stream: res.Stream, LastSeq: res.LastSeq}
		}
		off += len(r.msgs)
		close(r.done)
	}
}
