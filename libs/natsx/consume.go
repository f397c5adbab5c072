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
	"go.opentelemetry.io/otel/trace"
)

// Handler processes one message. Return nil once its side effects are
// done, an error wrapping ErrPermanent (see Permanent) when retrying cannot
// help, or any other error to have it redelivered later.
type Handler func(ctx context.Context, msg jetstream.Msg) error

// Consumer defaults.
const (
	DefaultMaxDeliver      = 8
	DefaultAckWait         = 30 * time.Second
	DefaultPullMaxMessages = 64
	dlqPublishTimeout      = 10 * time.Second
	maxReasonLen           = 1024
)

// DefaultBackoff returns the nak delay after the numDelivered-th delivery
// failed: 1s, 5s, 30s, 2m, then 10m.
func DefaultBackoff(numDelivered uint64) time.Duration {
	switch {
	case numDelivered <= 1:
		return time.Second
	case numDelivered == 2:
		return 5 * time.Second
	case numDelivered == 3:
		return 30 * time.Second
	case numDelivered == 4:
		return 2 * time.Minute
	default:
		return 10 * time.Minute
	}
}

// ConsumerSpec describes a durable pull consumer with explicit acks.
type ConsumerSpec struct {
	// Stream to read. Required.
	Stream string
	// Durable name, "<service>-<purpose>". Required.
	Durable string
	// FilterSubjects limits the consumer to these subjects (wildcards allowed).
	FilterSubjects []string
	// MaxDeliver bounds deliveries per message; 0 means DefaultMaxDeliver.
	// After the last one the server gives up and sends the advisory that
	// ForwardMaxDeliveries turns into a dead letter.
	MaxDeliver int
	// AckWait is how long a delivery may stay unacknowledged before the
	// server redelivers it; 0 means DefaultAckWait. Long handlers call
	// msg.InProgress().
	AckWait time.Duration
	// MaxAckPending bounds unacknowledged deliveries across all workers and
	// replicas; 0 keeps the server default (1000).
	MaxAckPending int
	// DeliverPolicy says where a new consumer starts (DeliverAllPolicy is the
	// zero value; side-effecting consumers usually want DeliverNewPolicy).
	DeliverPolicy jetstream.DeliverPolicy
	// Backoff gives the nak delay after a transient failure of the
	// numDelivered-th delivery; nil means DefaultBackoff.
	Backoff func(numDelivered uint64) time.Duration
	// Workers is the number of parallel Consume loops (each runs its handler
	// calls one at a time); 0 means 1.
	Workers int
	// PullMaxMessages is how many messages each worker buffers; 0 means
	// DefaultPullMaxMessages.
	PullMaxMessages int
	// TracerProvider for the CONSUMER spans; nil uses the global one.
	TracerProvider trace.TracerProvider
}

func (s *ConsumerSpec) applyDefaults() {
	if s.MaxDeliver == 0 {
		s.MaxDeliver = DefaultMaxDeliver
	}
	if s.AckWait == 0 {
		s.AckWait = DefaultAckWait
	}
	if s.Backoff == nil {
		s.Backoff = DefaultBackoff
	}
	if s.Workers == 0 {
		s.Workers = 1
	}
	if s.PullMaxMessages == 0 {
		s.PullMaxMessages = DefaultPullMaxMessages
	}
	if s.TracerProvider == nil {
		s.TracerProvider = otel.GetTracerProvider()
	}
}

func (s *ConsumerSpec) validate() error {
	errs := validateDurable("ConsumerSpec", s.Stream, s.Durable, s.FilterSubjects, s.MaxDeliver, s.AckWait)
	if s.MaxAckPending < 0 {
		errs = append(errs, fmt.Errorf("ConsumerSpec.MaxAckPending %d is negative", s.MaxAckPending))
	}
	if s.Workers < 1 {
		errs = append(errs, fmt.Errorf("ConsumerSpec.Workers %d: must be at least 1", s.Workers))
	}
	if s.PullMaxMessages < 1 {
		errs = append(errs, fmt.Errorf("ConsumerSpec.PullMaxMessages %d: must be at least 1", s.PullMaxMessages))
	}
	return errors.Join(errs...)
}

// validateDurable checks what every durable consumer spec has; spec names
// the spec type in the errors.
func validateDurable(spec, stream, durable string, filters []string, maxDeliver int, ackWait time.Duration) []error {
	var errs []error
	if err := ValidToken(stream); err != nil {
		errs = append(errs, fmt.Errorf("%s.Stream: %w", spec, err))
	}
	if err := ValidToken(durable); err != nil {
		errs = append(errs, fmt.Errorf("%s.Durable: %w", spec, err))
	}
	for i, f := range filters {
		if f == "" {
			errs = append(errs, fmt.Errorf("%s.FilterSubjects[%d] is empty", spec, i))
		}
	}
	if maxDeliver < 1 {
		errs = append(errs, fmt.Errorf("%s.MaxDeliver %d: must be at least 1 (unlimited redelivery is not allowed)", spec, maxDeliver))
	}
	if ackWait < 0 {
		errs = append(errs, fmt.Errorf("%s.AckWait %s is negative", spec, ackWait))
	}
	return errs
}

// Consumer is a running Consume; stop it with Stop.
type Consumer struct {
	spec   ConsumerSpec
	js     jetstream.JetStream
	h      Handler
	log    *slog.Logger
	tracer trace.Tracer
	base   context.Context // parent of every handler context; never cancelled

	ccs       []jetstream.ConsumeContext
	drainOnce sync.Once
	done      chan struct{} // closed by Stop, ends the ctx watcher
	doneOnce  sync.Once
}

// Consume creates (or updates) the durable pull consumer of spec and runs h
// for every message on spec.Workers parallel loops:
//
//   - each call gets a CONSUMER span "process <subject template>", parented
//     on the trace context in the message headers;
//   - nil: the message is acknowledged, waiting for the server's
//     confirmation (DoubleAck);
//   - a permanent error (IsPermanent): the message (payload, headers and
//     Sb-Dlq-* headers) is published to dlq.<stream>.<durable>, and only
//     after that is acknowledged is the original terminated;
//   - any other error, or a panic: the message is nak'd with delay
//     spec.Backoff(number of deliveries so far).
//
// ctx bounds the set-up; when it ends, the consumer drains (as Stop does).
// Handler contexts keep ctx's values but not its cancellation, so work in
// flight can finish while draining.
func Consume(ctx context.Context, js jetstream.JetStream, spec ConsumerSpec, h Handler, logger *slog.Logger) (*Consumer, error) {
	spec.applyDefaults()
	if err := spec.validate(); err != nil {
		return nil, fmt.Errorf("natsx: consume: %w", err)
	}
	if js == nil || h == nil {
		return nil, errors.New("natsx: consume: nil JetStream or nil Handler")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:        spec.Durable,
		FilterSubjects: spec.FilterSubjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        spec.AckWait,
		MaxDeliver:     spec.MaxDeliver,
		MaxAckPending:  spec.MaxAckPending,
		DeliverPolicy:  spec.DeliverPolicy,
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, spec.Stream, cfg)
	if err != nil {
		return nil, classify(ctx, fmt.Sprintf("natsx: create consumer %q on stream %q", spec.Durable, spec.Stream), err)
	}

	c := &Consumer{
		spec:   spec,
		js:     js,
		h:      h,
		log:    logger.With("stream", spec.Stream, "consumer", spec.Durable),
		tracer: spec.TracerProvider.Tracer(instrumentationName),
		base:   context.WithoutCancel(ctx),
		done:   make(chan struct{}),
	}
	for i := range spec.Workers {
		cc, err := cons.Consume(c.handle,
			jetstream.PullMaxMessages(spec.PullMaxMessages),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				c.log.Warn("consume error", "worker", i, "err", err)
			}))
		if err != nil {
			for _, started := range c.ccs {
				started.Stop()
			}
			return nil, classify(ctx, fmt.Sprintf("natsx: consume %q on stream %q (worker %d)", spec.Durable, spec.Stream, i), err)
		}
		c.ccs = append(c.ccs, cc)
	}
	go func() {
		select {
		case <-ctx.Done():
			c.drain()
		case <-c.done:
		}
	}()
	return c, nil
}

// Name is the durable consumer's name.
func (c *Consumer) Name() string { return c.spec.Durable }

// Stop stops fetching, lets every worker finish the messages it already
// holds, and waits until all are done or ctx ends.
func (c *Consumer) Stop(ctx context.Context) error {
	c.doneOnce.Do(func() { close(c.done) })
	c.drain()
	for i, cc := range c.ccs {
		select {
		case <-cc.Closed():
		case <-ctx.Done():
			return fmt.Errorf("natsx: stop consumer %q: worker %d still draining: %w", c.spec.Durable, i, ctx.Err())
		}
	}
	return nil
}

func (c *Consumer) drain() {
	c.drainOnce.Do(func() {
		for _, cc := range c.ccs {
			cc.Drain()
		}
	})
}

// handle runs the handler contract for one delivery.
func (c *Consumer) handle(m jetstream.Msg) {
	var numDelivered, streamSeq uint64 = 1, 0
	md, mdErr := m.Metadata()
	if mdErr == nil {
		numDelivered, streamSeq = md.NumDelivered, md.Sequence.Stream
	}

	ctx := otel.GetTextMapPropagator().Extract(c.base, HeaderCarrier(m.Headers()))
	attrs := subjectAttrs(m.Subject())
	attrs = append(attrs,
		attrMessagingOperation.String(messagingOperationProcess),
		attrMessagingConsumer.String(c.spec.Durable),
		attrMessagingStream.String(c.spec.Stream),
		attrMessagingDeliveries.Int64(int64(numDelivered)),
		attrMessagingStreamSeq.Int64(int64(streamSeq)),
	)
	msgID := m.Headers().Get(HeaderMsgID)
	if msgID != "" {
		attrs = append(attrs, attrMessagingMessageID.String(msgID))
	}
	ctx, span := c.tracer.Start(ctx, "process "+SubjectTemplate(m.Subject()),
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	defer span.End()
	log := c.log.With("subject", m.Subject(), "stream_seq", streamSeq, "msg_id", msgID, "deliveries", numDelivered)

	err := c.call(ctx, m, log)
	switch {
	case err == nil:
		if aerr := m.DoubleAck(ctx); aerr != nil {
			// The message will be redelivered after AckWait; handlers are idempotent.
			log.Warn("ack failed", "err", aerr)
			span.RecordError(aerr)
		}
	case IsPermanent(err):
		_ = spanErr(span, err)
		if mdErr != nil {
			log.Error("permanent failure, but message metadata is unreadable; redelivering", "err", err, "metadata_err", mdErr)
			c.nak(m, numDelivered, log)
			return
		}
		if dlErr := deadLetterMsg(ctx, c.js, c.spec.Durable, m, md, err, log); dlErr != nil {
			// Keep the original: it is retried, and dead-lettered next time.
			log.Error("dead-letter publish failed; redelivering", "err", err, "dlq_err", dlErr)
			span.RecordError(dlErr)
			c.nak(m, numDelivered, log)
			return
		}
		span.SetAttributes(attribute.Bool("signalbridge.dead_lettered", true))
	default:
		_ = spanErr(span, err)
		delay := c.nak(m, numDelivered, log)
		log.Warn("transient failure: message will be redelivered", "err", err, "delay", delay)
	}
}

// call runs the handler, turning a panic into a transient error.
func (c *Consumer) call(ctx context.Context, m jetstream.Msg, log *slog.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("handler panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("natsx: handler panicked: %v", r)
		}
	}()
	return c.h(ctx, m)
}

func (c *Consumer) nak(m jetstream.Msg, numDelivered uint64, log *slog.Logger) time.Duration {
	delay := c.spec.Backoff(numDelivered)
	if err := m.NakWithDelay(delay); err != nil {
		log.Warn("nak failed; the server redelivers after AckWait", "err", err)
	}
	return delay
}
