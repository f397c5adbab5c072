package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// BatchHandler processes a batch of messages and says how each one went. It
// returns nil when every message is done, or else exactly one error per
// message, in the order of msgs: nil when that message is done, an error
// wrapping ErrPermanent (see Permanent) when retrying it cannot help, any
// other error to have it redelivered later. The handler must not acknowledge
// the messages itself.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg) []error

// Batch consumer defaults.
const (
	// DefaultBatchMaxMessages is the most messages per handler call when
	// BatchSpec.MaxMessages is 0: one atomic batch's worth (MaxBatchSize).
	DefaultBatchMaxMessages = MaxBatchSize
	// DefaultBatchMaxWait is how long a batch waits for more messages after
	// its first when BatchSpec.MaxWait is 0.
	DefaultBatchMaxWait = 10 * time.Millisecond
	// maxBatchLinks bounds the span links of one batch span (the SDK's
	// default link limit; more would be dropped).
	maxBatchLinks = 128
)

// Batch span attributes (ours).
const (
	attrBatchRetried      = attribute.Key("signalbridge.batch.retried")
	attrBatchDeadLettered = attribute.Key("signalbridge.batch.dead_lettered")
)

// Outcomes of a consumed message, the "outcome" attribute of the
// signalbridge.natsx.consume.messages counter.
const (
	outcomeAcked        = "acked"         // handled; acknowledged
	outcomeRetried      = "retried"       // transient failure; nak'd with backoff
	outcomeDeadLettered = "dead_lettered" // permanent failure; in the DLQ, terminated
	outcomeReleased     = "released"      // received while stopping; nak'd for redelivery at once
)

// BatchSpec describes a durable pull consumer whose messages are handled in
// batches.
type BatchSpec struct {
	// Stream to read. Required.
	Stream string
	// Durable name, "<service>-<purpose>". Required.
	Durable string
	// Description of the consumer, for operators (optional).
	Description string
	// FilterSubjects limits the consumer to these subjects (wildcards allowed).
	FilterSubjects []string
	// MaxDeliver bounds deliveries per message; 0 means DefaultMaxDeliver.
	// A message still failing after the last one is dead-lettered with
	// reason ReasonMaxDeliveries (see ForwardMaxDeliveries, which
	// ConsumeBatch runs).
	MaxDeliver int
	// AckWait is how long a delivery may stay unacknowledged before the
	// server redelivers it; 0 means DefaultAckWait. It also bounds a handler
	// call (its context ends then), so it must cover the time a message waits
	// for its batch plus the handling of the batch.
	AckWait time.Duration
	// MaxAckPending bounds unacknowledged deliveries across batches and
	// replicas; 0 means (Concurrency + 2) × MaxMessages: the batches being
	// handled, the one being collected and one more buffered.
	MaxAckPending int
	// DeliverPolicy says where a new consumer starts (DeliverAllPolicy is the
	// zero value).
	DeliverPolicy jetstream.DeliverPolicy
	// Backoff gives the nak delay after a transient failure of the
	// numDelivered-th delivery; nil means DefaultBackoff.
	Backoff func(numDelivered uint64) time.Duration
	// MaxMessages is the most messages per handler call; 0 means
	// DefaultBatchMaxMessages.
	MaxMessages int
	// MaxWait is how long a batch waits for more messages after its first
	// arrived; 0 means DefaultBatchMaxWait. A batch goes to the handler when
	// it holds MaxMessages or MaxWait has passed, whichever comes first.
	MaxWait time.Duration
	// Concurrency is the number of handler calls running at once; 0 means 1.
	// While all are busy, messages keep arriving and the next batch grows (up
	// to MaxMessages) instead of more batches being started.
	Concurrency int
	// PullMaxMessages is how many messages the client asks the server for
	// ahead of the handler; 0 means min(MaxAckPending, 2 × MaxMessages).
	PullMaxMessages int
	// TracerProvider for the batch spans; nil uses the global one.
	TracerProvider trace.TracerProvider
	// MeterProvider for the consumer's metrics; nil uses the global one.
	MeterProvider metric.MeterProvider
}

func (s *BatchSpec) applyDefaults() {
	if s.MaxDeliver == 0 {
		s.MaxDeliver = DefaultMaxDeliver
	}
	if s.AckWait == 0 {
		s.AckWait = DefaultAckWait
	}
	if s.Backoff == nil {
		s.Backoff = DefaultBackoff
	}
	if s.MaxMessages == 0 {
		s.MaxMessages = DefaultBatchMaxMessages
	}
	if s.MaxWait == 0 {
		s.MaxWait = DefaultBatchMaxWait
	}
	if s.Concurrency == 0 {
		s.Concurrency = 1
	}
	if s.MaxAckPending == 0 && s.MaxMessages > 0 && s.Concurrency > 0 {
		s.MaxAckPending = (s.Concurrency + 2) * s.MaxMessages
	}
	if s.PullMaxMessages == 0 && s.MaxAckPending > 0 && s.MaxMessages > 0 {
		s.PullMaxMessages = min(s.MaxAckPending, 2*s.MaxMessages)
	}
	if s.TracerProvider == nil {
		s.TracerProvider = otel.GetTracerProvider()
	}
	if s.MeterProvider == nil {
		s.MeterProvider = otel.GetMeterProvider()
	}
}

func (s *BatchSpec) validate() error {
	errs := validateDurable("BatchSpec", s.Stream, s.Durable, s.FilterSubjects, s.MaxDeliver, s.AckWait)
	if s.MaxMessages < 1 {
		errs = append(errs, fmt.Errorf("BatchSpec.MaxMessages %d: must be at least 1", s.MaxMessages))
	}
	if s.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("BatchSpec.MaxWait %s is negative", s.MaxWait))
	}
	if s.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("BatchSpec.Concurrency %d: must be at least 1", s.Concurrency))
	}
	if s.MaxAckPending < 1 {
		errs = append(errs, fmt.Errorf("BatchSpec.MaxAckPending %d: must be at least 1", s.MaxAckPending))
	}
	if s.PullMaxMessages < 1 {
		errs = append(errs, fmt.Errorf("BatchSpec.PullMaxMessages %d: must be at least 1", s.PullMaxMessages))
	}
	return errors.Join(errs...)
}

// batchMetrics are a batch consumer's instruments.
type batchMetrics struct {
	messages metric.Int64Counter
	size     metric.Int64Histogram
	duration metric.Float64Histogram
	// Attribute sets, built once.
	consumer attribute.Set
	outcomes map[string]metric.MeasurementOption
}

func newBatchMetrics(mp metric.MeterProvider, stream, durable string) (batchMetrics, error) {
	meter := mp.Meter(instrumentationName)
	var m batchMetrics
	var err error
	if m.messages, err = meter.Int64Counter("signalbridge.natsx.consume.messages", metric.WithUnit("{message}"),
		metric.WithDescription("messages consumed, by outcome: acked, retried (nak'd with backoff), dead_lettered, released (nak'd while stopping)")); err != nil {
		return m, err
	}
	if m.size, err = meter.Int64Histogram("signalbridge.natsx.consume.batch.size", metric.WithUnit("{message}"),
		metric.WithDescription("messages per handler call of a batch consumer")); err != nil {
		return m, err
	}
	if m.duration, err = meter.Float64Histogram("signalbridge.natsx.consume.batch.duration", metric.WithUnit("s"),
		metric.WithDescription("time to handle and settle one batch"),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)); err != nil {
		return m, err
	}
	base := []attribute.KeyValue{
		attrMessagingSystem.String(messagingSystemNATS),
		attrMessagingStream.String(stream),
		attrMessagingConsumer.String(durable),
	}
	m.consumer = attribute.NewSet(base...)
	m.outcomes = map[string]metric.MeasurementOption{}
	for _, o := range []string{outcomeAcked, outcomeRetried, outcomeDeadLettered, outcomeReleased} {
		m.outcomes[o] = metric.WithAttributeSet(attribute.NewSet(append(base[:len(base):len(base)], attribute.String("outcome", o))...))
	}
	return m, nil
}

func (m *batchMetrics) count(ctx context.Context, outcome string, n int) {
	if n > 0 {
		m.messages.Add(ctx, int64(n), m.outcomes[outcome])
	}
}

// BatchConsumer is a running ConsumeBatch; stop it with Stop.
type BatchConsumer struct {
	spec    BatchSpec
	js      jetstream.JetStream
	h       BatchHandler
	log     *slog.Logger
	tracer  trace.Tracer
	metrics batchMetrics
	base    context.Context // parent of every batch context; never cancelled

	cc      jetstream.ConsumeContext
	forward func()             // stops the dead-letter forwarder
	in      chan jetstream.Msg // received, not yet in a batch
	slots   chan struct{}      // one per running handler call

	stopping chan struct{} // closed when stopping begins
	stopOnce sync.Once
	heldMu   sync.Mutex
	held     []jetstream.Msg // received while stopping, not yet given back
	released bool            // held messages were given back; later ones go at once
	done     chan struct{}   // closed once every batch is settled
}

// ConsumeBatch creates (or updates) the durable pull consumer of spec and
// hands its messages to h in batches of up to spec.MaxMessages, each
// collected for at most spec.MaxWait after its first message, with up to
// spec.Concurrency handler calls at once. Every message of a batch is
// settled by the contract of Consume:
//
//   - each batch gets one CONSUMER span "process <subject template>", a new
//     trace linked to the trace contexts in the messages' headers (up to
//     128 links);
//   - nil: the message is acknowledged; the batch's last acknowledgement
//     waits for the server's confirmation (DoubleAck), which, acks being
//     processed in order, confirms those before it;
//   - a permanent error (IsPermanent): the message (payload, headers and
//     Sb-Dlq-* headers) is published to dlq.<stream>.<durable>, and only
//     after that is acknowledged is the original terminated;
//   - any other error, or a panic of h: the message is nak'd with delay
//     spec.Backoff(number of deliveries so far);
//   - after spec.MaxDeliver deliveries the server gives up on a message,
//     and the forwarder that ConsumeBatch runs (ForwardMaxDeliveries)
//     dead-letters it with reason ReasonMaxDeliveries.
//
// ctx bounds the set-up; when it ends, the consumer stops as Stop does. A
// handler context keeps ctx's values, not its cancellation, and ends after
// spec.AckWait.
func ConsumeBatch(ctx context.Context, js jetstream.JetStream, spec BatchSpec, h BatchHandler, logger *slog.Logger) (*BatchConsumer, error) {
	spec.applyDefaults()
	if err := spec.validate(); err != nil {
		return nil, fmt.Errorf("natsx: consume batch: %w", err)
	}
	if js == nil || js.Conn() == nil || h == nil {
		return nil, errors.New("natsx: consume batch: nil JetStream, connection or BatchHandler")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsx: consume batch %q: %w", spec.Durable, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	metrics, err := newBatchMetrics(spec.MeterProvider, spec.Stream, spec.Durable)
	if err != nil {
		return nil, fmt.Errorf("natsx: consume batch %q: metrics: %w", spec.Durable, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, spec.Stream, jetstream.ConsumerConfig{
		Durable:        spec.Durable,
		Description:    spec.Description,
		FilterSubjects: spec.FilterSubjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        spec.AckWait,
		MaxDeliver:     spec.MaxDeliver,
		MaxAckPending:  spec.MaxAckPending,
		DeliverPolicy:  spec.DeliverPolicy,
	})
	if err != nil {
		return nil, classify(ctx, fmt.Sprintf("natsx: create consumer %q on stream %q", spec.Durable, spec.Stream), err)
	}

	c := &BatchConsumer{
		spec:     spec,
		js:       js,
		h:        h,
		log:      logger.With("stream", spec.Stream, "consumer", spec.Durable),
		tracer:   spec.TracerProvider.Tracer(instrumentationName),
		metrics:  metrics,
		base:     context.WithoutCancel(ctx),
		in:       make(chan jetstream.Msg, spec.PullMaxMessages+spec.MaxMessages),
		slots:    make(chan struct{}, spec.Concurrency),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
	}
	// The forwarder outlives ctx: it runs until the last batch is settled,
	// since a nak of that batch can be a message's last delivery.
	fctx, fcancel := context.WithCancel(c.base)
	stopForward, err := ForwardMaxDeliveries(fctx, js.Conn(), js, spec.Stream, spec.Durable, logger)
	if err != nil {
		fcancel()
		return nil, fmt.Errorf("natsx: consume batch %q: %w", spec.Durable, err)
	}
	c.forward = func() { stopForward(); fcancel() }
	c.cc, err = cons.Consume(c.receive,
		jetstream.PullMaxMessages(spec.PullMaxMessages),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.log.Warn("consume error", "err", err)
		}))
	if err != nil {
		c.forward()
		return nil, classify(ctx, fmt.Sprintf("natsx: consume %q on stream %q", spec.Durable, spec.Stream), err)
	}
	go c.collect()
	go func() {
		select {
		case <-ctx.Done():
			c.stop()
		case <-c.done:
		}
	}()
	return c, nil
}

// Name is the durable consumer's name.
func (c *BatchConsumer) Name() string { return c.spec.Durable }

// Stop stops fetching and waits until the batches already handed to the
// handler are settled (acknowledged, nak'd or dead-lettered), or until ctx
// ends. Messages received but not yet in a batch are nak'd without delay, so
// that another replica (or the next start) gets them at once.
func (c *BatchConsumer) Stop(ctx context.Context) error {
	c.stop()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("natsx: stop batch consumer %q: batches still running: %w", c.spec.Durable, ctx.Err())
	}
}

func (c *BatchConsumer) stop() {
	c.stopOnce.Do(func() {
		c.cc.Drain()
		close(c.stopping)
	})
}

// receive is the Consume callback: it queues the message for a batch.
func (c *BatchConsumer) receive(m jetstream.Msg) {
	select {
	case <-c.stopping:
		c.hold(m)
		return
	default:
	}
	select {
	case c.in <- m:
	case <-c.stopping:
		c.hold(m)
	}
}

// hold keeps messages received while stopping, to be given back once the
// subscription is gone: a nak before that would have the server redeliver
// them to this very consumer.
func (c *BatchConsumer) hold(msgs ...jetstream.Msg) {
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	if c.released {
		c.release(msgs)
		return
	}
	c.held = append(c.held, msgs...)
}

// release gives messages back to the server for immediate redelivery.
func (c *BatchConsumer) release(msgs []jetstream.Msg) {
	for _, m := range msgs {
		if err := m.Nak(); err != nil {
			c.log.Debug("nak while stopping failed; the server redelivers after AckWait", "err", err)
		}
	}
	c.metrics.count(c.base, outcomeReleased, len(msgs))
}

// collect groups received messages into batches and starts a handler call
// per batch, at most spec.Concurrency at once. When stopping, it releases
// what is not in a batch yet and waits for the running calls.
func (c *BatchConsumer) collect() {
	defer close(c.done)
	defer c.forward()
	var running sync.WaitGroup
	defer running.Wait()
	defer c.releaseQueued()
	for {
		var first jetstream.Msg
		select {
		case first = <-c.in:
		case <-c.stopping:
			return
		}
		// Wait for a free slot before collecting: messages keep queueing
		// meanwhile, so a busy handler makes the next batch bigger rather
		// than making more batches.
		select {
		case c.slots <- struct{}{}:
		case <-c.stopping:
			c.hold(first)
			return
		}
		batch, ok := c.fill(first)
		if !ok {
			<-c.slots
			return
		}
		running.Add(1)
		go func() {
			defer running.Done()
			defer func() { <-c.slots }()
			c.process(batch)
		}()
	}
}

// fill collects a batch starting with first; false means stopping began and
// the messages were released.
func (c *BatchConsumer) fill(first jetstream.Msg) ([]jetstream.Msg, bool) {
	batch := make([]jetstream.Msg, 1, min(c.spec.MaxMessages, cap(c.in)))
	batch[0] = first
	timer := time.NewTimer(c.spec.MaxWait)
	defer timer.Stop()
	for len(batch) < c.spec.MaxMessages {
		select {
		case m := <-c.in:
			batch = append(batch, m)
		case <-timer.C:
			return batch, true
		case <-c.stopping:
			c.hold(batch...)
			return nil, false
		}
	}
	return batch, true
}

// releaseQueued gives back every message not in a batch, once the consume
// context has delivered its last one (and so has unsubscribed).
func (c *BatchConsumer) releaseQueued() {
	closed := c.cc.Closed()
	for {
		select {
		case m := <-c.in:
			c.hold(m)
			continue
		case <-closed:
		}
		break
	}
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	for {
		select {
		case m := <-c.in:
			c.held = append(c.held, m)
			continue
		default:
		}
		break
	}
	c.release(c.held)
	c.held, c.released = nil, true
}

// process runs the handler on one batch and settles its messages.
func (c *BatchConsumer) process(msgs []jetstream.Msg) {
	start := time.Now()
	ctx, span := c.startSpan(msgs)
	defer span.End()
	hctx, cancel := context.WithTimeout(ctx, c.spec.AckWait)
	errs := c.call(hctx, msgs)
	cancel()
	retried, dead := c.settle(ctx, msgs, errs, span)
	if retried+dead > 0 {
		span.SetAttributes(attrBatchRetried.Int(retried), attrBatchDeadLettered.Int(dead))
		span.SetStatus(codes.Error, fmt.Sprintf("%d of %d messages failed", retried+dead, len(msgs)))
	}
	set := metric.WithAttributeSet(c.metrics.consumer)
	c.metrics.size.Record(ctx, int64(len(msgs)), set)
	c.metrics.duration.Record(ctx, time.Since(start).Seconds(), set)
}

// startSpan starts the batch's CONSUMER span, linked to the messages' trace
// contexts.
func (c *BatchConsumer) startSpan(msgs []jetstream.Msg) (context.Context, trace.Span) {
	prop := otel.GetTextMapPropagator()
	links := make([]trace.Link, 0, min(len(msgs), maxBatchLinks))
	subject, template, sameTemplate := "", "", true
	for i, m := range msgs {
		if s := m.Subject(); s != subject {
			subject = s
			if t := SubjectTemplate(s); i == 0 {
				template = t
			} else if t != template {
				sameTemplate = false
			}
		}
		if len(links) == maxBatchLinks {
			continue
		}
		sc := trace.SpanContextFromContext(prop.Extract(context.Background(), HeaderCarrier(m.Headers())))
		if !sc.IsValid() {
			continue
		}
		l := trace.Link{SpanContext: sc}
		if id := m.Headers().Get(HeaderMsgID); id != "" {
			l.Attributes = []attribute.KeyValue{attrMessagingMessageID.String(id)}
		}
		links = append(links, l)
	}
	attrs := []attribute.KeyValue{
		attrMessagingSystem.String(messagingSystemNATS),
		attrMessagingOperation.String(messagingOperationProcess),
		attrMessagingConsumer.String(c.spec.Durable),
		attrMessagingStream.String(c.spec.Stream),
		attrMessagingBatchCount.Int(len(msgs)),
	}
	name := "process " + c.spec.Durable
	if sameTemplate {
		name = "process " + template
		attrs = append(attrs, attrMessagingDestination.String(template))
	}
	return c.tracer.Start(c.base, name, trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...), trace.WithAttributes(attrs...))
}

// call runs the handler and returns one error per message: a panic, or an
// answer of the wrong length, fails every message transiently.
func (c *BatchConsumer) call(ctx context.Context, msgs []jetstream.Msg) (errs []error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("batch handler panicked", "panic", r, "messages", len(msgs), "stack", string(debug.Stack()))
			errs = failAll(len(msgs), fmt.Errorf("natsx: batch handler panicked: %v", r))
		}
	}()
	errs = c.h(ctx, msgs)
	switch len(errs) {
	case 0:
		return make([]error, len(msgs))
	case len(msgs):
		return errs
	}
	c.log.Error("batch handler returned the wrong number of outcomes; redelivering the batch", "messages", len(msgs), "outcomes", len(errs))
	return failAll(len(msgs), fmt.Errorf("natsx: batch handler returned %d outcomes for %d messages", len(errs), len(msgs)))
}

func failAll(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// settle applies the handler contract to every message of a batch and
// returns how many were nak'd and how many dead-lettered.
func (c *BatchConsumer) settle(ctx context.Context, msgs []jetstream.Msg, errs []error, span trace.Span) (retried, dead int) {
	var last jetstream.Msg // the last message to acknowledge: DoubleAck
	acked, transient := 0, 0
	var firstTransient error
	for i, m := range msgs {
		err := errs[i]
		switch {
		case err == nil:
			if last != nil {
				if aerr := last.Ack(); aerr != nil {
					// Redelivered after AckWait; handlers are idempotent.
					c.log.Warn("ack failed", "err", aerr)
				}
			}
			last = m
			acked++
		case IsPermanent(err):
			if c.deadLetter(ctx, m, err, span) {
				dead++
			} else {
				retried++
			}
		default:
			if firstTransient == nil {
				firstTransient = err
				span.RecordError(err)
			}
			c.nak(m)
			transient++
		}
	}
	retried += transient
	if last != nil {
		actx, cancel := context.WithTimeout(ctx, dlqPublishTimeout)
		if aerr := last.DoubleAck(actx); aerr != nil {
			c.log.Warn("ack not confirmed; unconfirmed messages are redelivered after AckWait", "err", aerr, "acked", acked)
			span.RecordError(aerr)
		}
		cancel()
	}
	if firstTransient != nil {
		c.log.Warn("transient failure: messages will be redelivered", "err", firstTransient, "messages", transient, "batch", len(msgs))
	}
	c.metrics.count(ctx, outcomeAcked, acked)
	c.metrics.count(ctx, outcomeRetried, retried)
	c.metrics.count(ctx, outcomeDeadLettered, dead)
	return retried, dead
}

// deadLetter publishes m to the DLQ and terminates it; when that cannot be
// done, m is nak'd (and dead-lettered on a later delivery). It reports
// whether m was dead-lettered.
func (c *BatchConsumer) deadLetter(ctx context.Context, m jetstream.Msg, cause error, span trace.Span) bool {
	span.RecordError(cause)
	log := c.log.With("subject", m.Subject(), "msg_id", m.Headers().Get(HeaderMsgID))
	md, err := m.Metadata()
	if err != nil {
		log.Error("permanent failure, but message metadata is unreadable; redelivering", "err", cause, "metadata_err", err)
		c.nak(m)
		return false
	}
	log = log.With("stream_seq", md.Sequence.Stream, "deliveries", md.NumDelivered)
	if err := deadLetterMsg(ctx, c.js, c.spec.Durable, m, md, cause, log); err != nil {
		log.Error("dead-letter publish failed; redelivering", "err", cause, "dlq_err", err)
		span.RecordError(err)
		c.nak(m)
		return false
	}
	return true
}

func (c *BatchConsumer) nak(m jetstream.Msg) {
	var n uint64 = 1
	if md, err := m.Metadata(); err == nil {
		n = md.NumDelivered
	}
	if err := m.NakWithDelay(c.spec.Backoff(n)); err != nil {
		c.log.Warn("nak failed; the server redelivers after AckWait", "err", err)
	}
}
