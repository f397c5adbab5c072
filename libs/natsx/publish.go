package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

const (
	// MaxBatchSize is the most messages PublishBatch takes: the server's
	// default limit for one atomic batch.
	MaxBatchSize = 1000

	// maxInflightBatches bounds the atomic batches one Publisher has open at
	// once. The server allows 50 per stream (and 1000 in total); callers
	// above the bound wait for a slot instead of being refused.
	maxInflightBatches = 32

	// maxBatchAttempts bounds tries of one atomic batch when the server
	// refuses it for a passing reason (too many batches in flight, ingest
	// queue full, batch abandoned). Nothing is stored by a refused batch.
	maxBatchAttempts = 4

	// defaultPublishTimeout applies when the caller's ctx has no deadline.
	defaultPublishTimeout = 10 * time.Second
)

// NewMsg builds a message for subject carrying m as binary protobuf, with
// the headers every event carries: Nats-Msg-Id (msgID, required: the
// deterministic event id), Sb-Event-Type (m's full protobuf name),
// Content-Type, and the W3C trace context of ctx (through the global
// propagator, with lower-case keys).
func NewMsg(ctx context.Context, subject, msgID string, m proto.Message) (*nats.Msg, error) {
	if subject == "" {
		return nil, fmt.Errorf("natsx: new message: %w: subject is empty", ErrInvalidMsg)
	}
	if msgID == "" {
		return nil, fmt.Errorf("natsx: new message on %q: %w: msg id (%s) is empty", subject, ErrInvalidMsg, HeaderMsgID)
	}
	if m == nil || !m.ProtoReflect().IsValid() {
		return nil, fmt.Errorf("natsx: new message on %q (id %q): %w: protobuf message is nil", subject, msgID, ErrInvalidMsg)
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("natsx: new message on %q (id %q): marshal %s: %w", subject, msgID, m.ProtoReflect().Descriptor().FullName(), err)
	}
	return NewEncodedMsg(ctx, subject, msgID, m.ProtoReflect().Descriptor().FullName(), data)
}

// NewEncodedMsg is NewMsg for a payload already encoded: data must be the
// binary protobuf encoding of a message of type eventType. It is for callers
// that build the encoding themselves, for example by splicing in the wire
// bytes of a sub-message they received instead of decoding and encoding it
// again.
func NewEncodedMsg(ctx context.Context, subject, msgID string, eventType protoreflect.FullName, data []byte) (*nats.Msg, error) {
	if subject == "" {
		return nil, fmt.Errorf("natsx: new message: %w: subject is empty", ErrInvalidMsg)
	}
	if msgID == "" {
		return nil, fmt.Errorf("natsx: new message on %q: %w: msg id (%s) is empty", subject, ErrInvalidMsg, HeaderMsgID)
	}
	if !eventType.IsValid() {
		return nil, fmt.Errorf("natsx: new message on %q (id %q): %w: event type %q is not a full protobuf name", subject, msgID, ErrInvalidMsg, eventType)
	}
	// One array for the three values, each slice without spare capacity (an
	// Add reallocates), and room in the map for the trace and batch headers
	// a publish adds.
	vals := []string{msgID, string(eventType), ContentTypeProtobuf}
	h := make(nats.Header, 8)
	h[HeaderMsgID] = vals[0:1:1]
	h[HeaderEventType] = vals[1:2:2]
	h[HeaderContentType] = vals[2:3:3]
	otel.GetTextMapPropagator().Inject(ctx, HeaderCarrier(h))
	return &nats.Msg{Subject: subject, Header: h, Data: data}, nil
}

// Publisher publishes to JetStream with a producer span per call. It is
// safe for concurrent use.
type Publisher struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	tracer trace.Tracer
	slots  chan struct{}
	// seqs[i] is the Nats-Batch-Sequence value of a batch's message i,
	// shared (as seqs[i:i+1:i+1]) by every batch instead of one per message.
	seqs []string
}

// NewPublisher returns a Publisher on nc and js (js must be built on nc).
// A nil tp uses the global tracer provider.
func NewPublisher(nc *nats.Conn, js jetstream.JetStream, tp trace.TracerProvider) *Publisher {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	seqs := make([]string, MaxBatchSize)
	for i := range seqs {
		seqs[i] = strconv.Itoa(i + 1)
	}
	return &Publisher{
		nc:     nc,
		js:     js,
		tracer: tp.Tracer(instrumentationName),
		slots:  make(chan struct{}, maxInflightBatches),
		seqs:   seqs,
	}
}

// Publish publishes msg and waits for the stream's acknowledgement. It
// starts a PRODUCER span "send <subject template>" and puts that span's
// trace context into the published copy's headers (msg is not modified).
// Errors wrap ErrUnavailable (not connected, no stream answering, timeout:
// retry later), ErrRejected (the stream refused it) or ErrInvalidMsg.
func (p *Publisher) Publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	if msg == nil || msg.Subject == "" {
		return nil, fmt.Errorf("natsx: publish: %w: nil message or empty subject", ErrInvalidMsg)
	}
	op := "natsx: publish to " + msg.Subject
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()

	attrs := subjectAttrs(msg.Subject)
	attrs = append(attrs, attrMessagingOperation.String(messagingOperationSend))
	if id := msg.Header.Get(HeaderMsgID); id != "" {
		attrs = append(attrs, attrMessagingMessageID.String(id))
	}
	ctx, span := p.tracer.Start(ctx, "send "+SubjectTemplate(msg.Subject),
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	defer span.End()

	out := outgoing(msg, traceHeader(ctx))
	wctx, stop, err := p.watchConn(ctx)
	if err != nil {
		return nil, spanErr(span, classify(ctx, op, err))
	}
	defer stop()
	ack, err := p.js.PublishMsg(wctx, out)
	if err != nil {
		return nil, spanErr(span, classify(wctx, op, err))
	}
	span.SetAttributes(attrMessagingStream.String(ack.Stream), attrMessagingStreamSeq.Int64(int64(ack.Sequence)))
	return ack, nil
}

// BatchResult describes a published batch.
type BatchResult struct {
	// Duplicates has one entry per input message: true if the message was
	// not stored again because the stream (or an earlier message of the
	// same batch) already had its Nats-Msg-Id.
	Duplicates []bool
	// Stream the batch went to.
	Stream string
	// LastSeq is the highest stream sequence the batch's messages have.
	LastSeq uint64
}

// PublishBatch stores msgs in one stream, all or nothing, as a JetStream
// atomic batch, and returns after the commit is acknowledged (with
// sync-always servers: on disk).
//
// Rules:
//   - 1 to MaxBatchSize messages, every one with a Nats-Msg-Id header, all
//     on subjects of the same stream (else the server abandons the batch and
//     the error wraps ErrRejected).
//   - A Nats-Msg-Id repeated within msgs is published once, at its first
//     position; later copies are reported as duplicates.
//   - If the stream already holds one of the ids (a client retrying a
//     half-new batch), the server refuses the whole atomic batch (error
//     10201); PublishBatch then publishes the messages one by one, in
//     flight together, and the stream drops the ones it already has. That
//     path is not atomic, but every message ends up stored exactly once.
//
// Errors wrap ErrUnavailable (not connected, no stream answering, timeout,
// server overloaded: retry later; a retry is safe because of the ids),
// ErrRejected, ErrInvalidMsg or ErrBatchTooLarge. The caller's messages are
// not modified. It is safe to call from many goroutines at once.
func (p *Publisher) PublishBatch(ctx context.Context, msgs []*nats.Msg) (BatchResult, error) {
	return p.publishBatch(ctx, msgs, false)
}

// PublishMerged is PublishBatch for a batch merged from the batches of
// several callers (requests answered together after one commit):
//   - each message keeps the trace context already in its headers (NewMsg
//     put its caller's there); only messages without one get the producer
//     span's;
//   - there is no one-by-one fallback: if the stream already holds one of
//     the ids, nothing is stored and the error satisfies IsStoredIDRefusal,
//     so that the caller publishes each part with PublishBatch instead of
//     slowing every part down.
func (p *Publisher) PublishMerged(ctx context.Context, msgs []*nats.Msg) (BatchResult, error) {
	return p.publishBatch(ctx, msgs, true)
}

// IsStoredIDRefusal reports whether err is PublishMerged's refusal of an
// atomic batch holding a Nats-Msg-Id the stream already has (JetStream
// error 10201). Nothing of that batch was stored.
func IsStoredIDRefusal(err error) bool { return isAPIError(err, codeBatchDuplicateMsgID) }

func (p *Publisher) publishBatch(ctx context.Context, msgs []*nats.Msg, merged bool) (BatchResult, error) {
	n := len(msgs)
	if n == 0 {
		return BatchResult{}, fmt.Errorf("natsx: publish batch: %w: no messages", ErrInvalidMsg)
	}
	if n > MaxBatchSize {
		return BatchResult{}, fmt.Errorf("natsx: publish batch: %w: %d messages, at most %d allowed", ErrBatchTooLarge, n, MaxBatchSize)
	}
	dups := make([]bool, n)
	seen := make(map[string]struct{}, n)
	unique := make([]int, 0, n) // indexes into msgs of the messages to publish
	for i, m := range msgs {
		if m == nil || m.Subject == "" {
			return BatchResult{}, fmt.Errorf("natsx: publish batch: %w: msgs[%d] is nil or has an empty subject", ErrInvalidMsg, i)
		}
		id := m.Header.Get(HeaderMsgID)
		if id == "" {
			return BatchResult{}, fmt.Errorf("natsx: publish batch: %w: msgs[%d] (subject %q) has no %s header", ErrInvalidMsg, i, m.Subject, HeaderMsgID)
		}
		if _, ok := seen[id]; ok {
			dups[i] = true
			continue
		}
		seen[id] = struct{}{}
		unique = append(unique, i)
	}

	op := fmt.Sprintf("natsx: publish batch of %d to %s", n, msgs[0].Subject)
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	attrs := subjectAttrs(msgs[0].Subject)
	attrs = append(attrs, attrMessagingOperation.String(messagingOperationSend), attrMessagingBatchCount.Int(n))
	ctx, span := p.tracer.Start(ctx, "send "+SubjectTemplate(msgs[0].Subject),
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	defer span.End()

	var traceFields []string // the propagator's header fields, looked up once per batch
	if merged {
		traceFields = otel.GetTextMapPropagator().Fields()
	}
	tc := traceHeader(ctx) // the producer span's, shared by every message that takes it
	out := make([]*nats.Msg, len(unique))
	for j, i := range unique {
		if merged && hasTraceContext(msgs[i].Header, traceFields) {
			out[j] = outgoing(msgs[i], nil)
			continue
		}
		out[j] = outgoing(msgs[i], tc)
	}

	ack, err := p.publishAtomic(ctx, out)
	if err == nil {
		span.SetAttributes(attrMessagingStream.String(ack.Stream), attrMessagingStreamSeq.Int64(int64(ack.Seq)),
			attrBatchDuplicates.Int(n-len(unique)))
		return BatchResult{Duplicates: dups, Stream: ack.Stream, LastSeq: ack.Seq}, nil
	}
	if merged || !isAPIError(err, codeBatchDuplicateMsgID) {
		return BatchResult{}, spanErr(span, classify(ctx, op, err))
	}

	// The stream has some of these ids already: publish one by one and
	// let de-duplication drop those.
	span.SetAttributes(attrBatchFallback.Bool(true))
	acks, err := p.publishEach(ctx, out)
	if err != nil {
		return BatchResult{}, spanErr(span, classify(ctx, op+" (one by one after duplicate id)", err))
	}
	res := BatchResult{Duplicates: dups}
	for j, a := range acks {
		dups[unique[j]] = a.Duplicate
		res.Stream = a.Stream
		res.LastSeq = max(res.LastSeq, a.Sequence)
	}
	count := 0
	for _, d := range dups {
		if d {
			count++
		}
	}
	span.SetAttributes(attrMessagingStream.String(res.Stream), attrBatchDuplicates.Int(count))
	return res, nil
}

// batchAck is the server's answer to the commit of an atomic batch, or to
// one of its messages: {"stream":..,"seq":..,"batch":..,"count":..} or
// {"error":{..}}; an accepted non-commit message gets an empty reply.
type batchAck struct {
	Error  *jetstream.APIError `json:"error,omitempty"`
	Stream string              `json:"stream"`
	Seq    uint64              `json:"seq"`
	Domain string              `json:"domain,omitempty"`
	Batch  string              `json:"batch,omitempty"`
	Count  int                 `json:"count,omitempty"`
}

// publishAtomic sends out as one atomic batch, trying again with a new
// batch id while the server refuses it for a passing reason.
func (p *Publisher) publishAtomic(ctx context.Context, out []*nats.Msg) (*batchAck, error) {
	wait := 10 * time.Millisecond
	ackFirst := false
	for attempt := 1; ; attempt++ {
		ack, err := p.tryAtomic(ctx, out, ackFirst)
		if err == nil {
			return ack, nil
		}
		if attempt == maxBatchAttempts ||
			!isAPIError(err, codeBatchTooManyInflight, codeTooManyRequests, codeBatchIncomplete) {
			return nil, err
		}
		// "Incomplete" hides why the server dropped a message that had no
		// reply subject; from now on, have it answer the first one.
		ackFirst = ackFirst || isAPIError(err, codeBatchIncomplete)
		t := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (after %d attempts, last: %w)", ctx.Err(), attempt, err)
		}
		wait *= 4
	}
}

// tryAtomic sends one atomic batch. All but the last message are plain
// publishes: the server answers a batch message only if it has a reply
// subject, and messages on one connection reach it in order. The last one
// carries Nats-Batch-Commit and its reply is the batch's PubAck, or the
// error that ended the batch. A refusal of a message without a reply
// (atomic publish disabled, too many batches in flight) shows at the commit
// only as "batch incomplete"; with ackFirst the first message is a request,
// so such a refusal comes back at once with its reason.
func (p *Publisher) tryAtomic(ctx context.Context, out []*nats.Msg, ackFirst bool) (_ *batchAck, err error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a batch slot: %w", ctx.Err())
	}
	defer func() { <-p.slots }()

	wctx, stop, err := p.watchConn(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	defer func() { err = withCause(wctx, err) }()

	id := nuid.Next()
	idValue := []string{id} // shared by every message of the batch
	n := len(out)
	for i, m := range out {
		m.Header[headerBatchID] = idValue
		m.Header[headerBatchSeq] = p.seqs[i : i+1 : i+1]
		delete(m.Header, headerBatchCommit)
	}
	out[n-1].Header[headerBatchCommit] = []string{"1"}

	next := 0
	if ackFirst && n > 1 {
		resp, err := p.nc.RequestMsgWithContext(wctx, out[0])
		if err != nil {
			return nil, fmt.Errorf("first message of batch %s: %w", id, err)
		}
		if len(resp.Data) > 0 { // an accepted message gets an empty reply
			var a batchAck
			if err := json.Unmarshal(resp.Data, &a); err != nil {
				return nil, fmt.Errorf("first message of batch %s: unreadable reply %q: %w", id, resp.Data, err)
			}
			if a.Error != nil {
				return nil, fmt.Errorf("first message of batch %s: %w", id, a.Error)
			}
		}
		next = 1
	}
	for i := next; i < n-1; i++ {
		if err := p.nc.PublishMsg(out[i]); err != nil {
			return nil, fmt.Errorf("message %d of batch %s: %w", i+1, id, err)
		}
	}
	if !p.nc.IsConnected() {
		return nil, fmt.Errorf("commit of batch %s: %w", id, errDisconnected)
	}
	resp, err := p.nc.RequestMsgWithContext(wctx, out[n-1])
	if err != nil {
		return nil, fmt.Errorf("commit of batch %s: %w", id, err)
	}
	var a batchAck
	if err := json.Unmarshal(resp.Data, &a); err != nil {
		return nil, fmt.Errorf("commit of batch %s: unreadable ack %q: %w", id, resp.Data, err)
	}
	if a.Error != nil {
		return nil, fmt.Errorf("commit of batch %s: %w", id, a.Error)
	}
	if a.Stream == "" || a.Batch != id || a.Count != n {
		return nil, fmt.Errorf("commit of batch %s: unexpected ack %q (want batch %s, count %d)", id, resp.Data, id, n)
	}
	return &a, nil
}

// publishEach publishes out one by one, all in flight together, and waits
// for every acknowledgement.
func (p *Publisher) publishEach(ctx context.Context, out []*nats.Msg) (_ []*jetstream.PubAck, err error) {
	wctx, stop, err := p.watchConn(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	defer func() { err = withCause(wctx, err) }()

	futures := make([]jetstream.PubAckFuture, len(out))
	for j, m := range out {
		m.Header.Del(headerBatchID)
		m.Header.Del(headerBatchSeq)
		m.Header.Del(headerBatchCommit)
		f, err := p.js.PublishMsgAsync(m)
		if err != nil {
			return nil, fmt.Errorf("message %d (id %q): %w", j, m.Header.Get(HeaderMsgID), err)
		}
		futures[j] = f
	}
	acks := make([]*jetstream.PubAck, len(out))
	for j, f := range futures {
		select {
		case a := <-f.Ok():
			acks[j] = a
		case err := <-f.Err():
			return nil, fmt.Errorf("message %d (id %q): %w", j, out[j].Header.Get(HeaderMsgID), err)
		case <-wctx.Done():
			return nil, fmt.Errorf("waiting for acks: %w", wctx.Err())
		}
	}
	return acks, nil
}

// watchConn fails at once if nc is not connected, and otherwise returns a
// context that is cancelled (cause errDisconnected) as soon as the
// connection drops, so nothing waits for an answer that cannot come.
func (p *Publisher) watchConn(ctx context.Context) (context.Context, func(), error) {
	ch := p.nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	if !p.nc.IsConnected() {
		p.nc.RemoveStatusListener(ch)
		return ctx, func() {}, fmt.Errorf("%w (status %s)", errDisconnected, p.nc.Status())
	}
	wctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		select {
		case _, ok := <-ch:
			if ok {
				cancel(errDisconnected)
			}
		case <-done:
		}
	}()
	return wctx, func() {
		close(done)
		p.nc.RemoveStatusListener(ch)
		cancel(nil)
	}, nil
}

// outgoing copies msg for publishing (the caller's message stays as it is)
// and sets the trace context tc (traceHeader's) in the copy's headers.
func outgoing(msg *nats.Msg, tc nats.Header) *nats.Msg {
	out := &nats.Msg{Subject: msg.Subject, Data: msg.Data, Header: cloneHeader(msg.Header)}
	for k, vs := range tc {
		setShared(out.Header, k, vs)
	}
	return out
}

// traceHeader is the trace context of ctx as the global propagator writes it
// into headers, once for all the messages of a publish. Its values have no
// spare capacity, so messages can share them (see setShared).
func traceHeader(ctx context.Context) nats.Header {
	tc := nats.Header{}
	otel.GetTextMapPropagator().Inject(ctx, HeaderCarrier(tc))
	for k, vs := range tc {
		tc[k] = slices.Clip(vs)
	}
	return tc
}

// setShared is HeaderCarrier.Set with a value slice that may be shared with
// other headers: vs must have no spare capacity, so that an Add on any of
// them reallocates instead of writing into the others.
func setShared(h nats.Header, key string, vs []string) {
	for k := range h {
		if k != key && strings.EqualFold(k, key) {
			delete(h, k)
		}
	}
	h[key] = vs
}

// hasTraceContext reports whether h carries a value of one of fields, the
// global propagator's (traceparent for W3C trace context).
func hasTraceContext(h nats.Header, fields []string) bool {
	for _, f := range fields {
		if HeaderCarrier(h).Get(f) != "" {
			return true
		}
	}
	return false
}

// withCause adds the cancel cause of ctx (for example errDisconnected) to
// err when ctx is done, so classify sees why the call was cut short.
func withCause(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, defaultPublishTimeout)
}

// isAPIError reports whether err carries a JetStream API error with one of codes.
func isAPIError(err error, codes ...jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	for _, c := range codes {
		if apiErr.ErrorCode == c {
			return true
		}
	}
	return false
}

// spanErr records err on span and returns it.
func spanErr(span trace.Span, err error) error {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	return err
}
