// Package pipeline runs the matcher's JetStream consumers: SignalReceived in,
// SignalMatched out (matched or not, with the evidence), and HubSpot change events
// applied to the CRM mirror.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/events/v1"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/services/matcher/internal/match"
	"github.com/signalbridge/signalbridge/services/matcher/internal/resolve"
)

// Consumer names.
const (
	DurableSignals    = "matcher-signals"
	DurableCRMEvents  = "matcher-crm-events"
	matchedIDPrefix   = "match:"
	instrumentationID = "github.com/signalbridge/signalbridge/services/matcher"
)

// Consumer modes of Signals.
const (
	// ModeBatch pulls signals with one JetStream consumer that does not hold a message
	// per worker: hundreds of signals are in flight, matched in one resolver call per
	// portal, published as one atomic batch and then acknowledged. The handler contract
	// is the one of natsx.Consume (ack on success; nak with natsx.DefaultBackoff on a
	// transient failure; dead letter first, then term, on a permanent one).
	ModeBatch = "batch"
	// ModeNatsx runs natsx.Consume: each worker holds one signal until its batch is
	// published, so in-flight signals, and the atomic batches, are bounded by Workers.
	ModeNatsx = "natsx"
)

// MatchedID is the Nats-Msg-Id (and event id) of the SignalMatched for a signal event:
// "match:<signal event id>", so a redelivered signal publishes the same message and the
// stream keeps one.
func MatchedID(signalEventID string) string { return matchedIDPrefix + signalEventID }

// SignalsOptions configure Signals.
type SignalsOptions struct {
	// Mode is ModeBatch (default) or ModeNatsx.
	Mode string
	// Workers is the number of natsx.Consume loops in ModeNatsx (default 32).
	Workers int
	// MaxBatch bounds the signals matched and published together (default and most:
	// natsx.MaxBatchSize, one atomic batch).
	MaxBatch int
	// Linger is how long a batch waits for more signals after its first (default 1ms).
	Linger time.Duration
	// Concurrency is the number of batches in flight (default 2).
	Concurrency int
	// MaxAckPending bounds unacknowledged signals (default 4 × MaxBatch in ModeBatch,
	// natsx.DefaultPullMaxMessages × Workers in ModeNatsx).
	MaxAckPending int
	// Producer is written into every event ("matcher/<version>").
	Producer string
	Now      func() time.Time
	Tracer   trace.TracerProvider
	Meter    metric.Meter
	Logger   *slog.Logger
}

// Signals consumes SignalReceived and publishes SignalMatched.
type Signals struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	res  *resolve.Resolver
	pub  *natsx.Publisher
	opts SignalsOptions
	log  *slog.Logger

	tracer    trace.Tracer
	matched   metric.Int64Counter
	failed    metric.Int64Counter
	batchSize metric.Int64Histogram

	in      chan *job
	quit    chan struct{} // closed by Stop
	stopped chan struct{} // closed when dispatch has returned
	sem     chan struct{}
	wg      sync.WaitGroup

	cons    *natsx.Consumer          // ModeNatsx
	cc      jetstream.ConsumeContext // ModeBatch
	forward func()
}

// job is one signal waiting for its batch.
type job struct {
	ctx    context.Context // the consumer span's (ModeNatsx) or the producer's context
	portal string
	sr     *signalsv1.SignalReceived
	id     string // event id of the signal
	finish func(error)
}

// NewSignals returns a Signals; Start runs it.
func NewSignals(nc *nats.Conn, js jetstream.JetStream, res *resolve.Resolver, opts SignalsOptions) (*Signals, error) {
	switch opts.Mode {
	case "":
		opts.Mode = ModeBatch
	case ModeBatch, ModeNatsx:
	default:
		return nil, fmt.Errorf("pipeline: signals mode %q: want %q or %q", opts.Mode, ModeBatch, ModeNatsx)
	}
	if opts.Workers <= 0 {
		opts.Workers = 32
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = natsx.MaxBatchSize
	}
	opts.MaxBatch = min(opts.MaxBatch, natsx.MaxBatchSize)
	if opts.Linger <= 0 {
		opts.Linger = time.Millisecond
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 2
	}
	if opts.MaxAckPending <= 0 {
		opts.MaxAckPending = 4 * opts.MaxBatch
		if opts.Mode == ModeNatsx {
			// Enough for every worker's pull buffer, so that all of them hold a signal.
			opts.MaxAckPending = natsx.DefaultPullMaxMessages * opts.Workers
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Tracer == nil {
		opts.Tracer = otel.GetTracerProvider()
	}
	if opts.Meter == nil {
		opts.Meter = otel.GetMeterProvider().Meter(instrumentationID)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	queue := opts.MaxAckPending
	s := &Signals{
		nc: nc, js: js, res: res, pub: natsx.NewPublisher(nc, js, opts.Tracer), opts: opts, log: opts.Logger,
		tracer: opts.Tracer.Tracer(instrumentationID),
		in:     make(chan *job, queue), quit: make(chan struct{}), stopped: make(chan struct{}),
		sem: make(chan struct{}, opts.Concurrency),
	}
	var err error
	if s.matched, err = opts.Meter.Int64Counter("matcher.signals", metric.WithDescription("signals matched and published, by outcome")); err != nil {
		return nil, err
	}
	if s.failed, err = opts.Meter.Int64Counter("matcher.signal_failures", metric.WithDescription("signals that could not be matched or published this delivery")); err != nil {
		return nil, err
	}
	if s.batchSize, err = opts.Meter.Int64Histogram("matcher.match_batch_size", metric.WithDescription("signals matched and published together")); err != nil {
		return nil, err
	}
	return s, nil
}

// Start creates the durable consumer matcher-signals on signals.v1.*.received and its
// dead-letter forwarder, and starts matching.
func (s *Signals) Start(ctx context.Context) error {
	s.wg.Add(1)
	go s.dispatch()
	fail := func(err error) error {
		close(s.quit)
		s.wg.Wait()
		return err
	}
	if s.opts.Mode == ModeNatsx {
		cons, err := natsx.Consume(ctx, s.js, natsx.ConsumerSpec{
			Stream:         natsx.StreamSignals,
			Durable:        DurableSignals,
			FilterSubjects: []string{natsx.SignalReceivedSubject("*")},
			Workers:        s.opts.Workers,
			MaxAckPending:  s.opts.MaxAckPending,
			TracerProvider: s.opts.Tracer,
		}, s.handle, s.log)
		if err != nil {
			return fail(fmt.Errorf("pipeline: signals consumer: %w", err))
		}
		s.cons = cons
	} else {
		cons, err := s.js.CreateOrUpdateConsumer(ctx, natsx.StreamSignals, jetstream.ConsumerConfig{
			Durable:        DurableSignals,
			FilterSubjects: []string{natsx.SignalReceivedSubject("*")},
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        natsx.DefaultAckWait,
			MaxDeliver:     natsx.DefaultMaxDeliver,
			MaxAckPending:  s.opts.MaxAckPending,
		})
		if err != nil {
			return fail(fmt.Errorf("pipeline: signals consumer: %w", err))
		}
		cc, err := cons.Consume(s.receive,
			jetstream.PullMaxMessages(min(s.opts.MaxAckPending, 2*s.opts.MaxBatch)),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { s.log.Warn("signals consume error", "err", err) }))
		if err != nil {
			return fail(fmt.Errorf("pipeline: signals consume: %w", err))
		}
		s.cc = cc
	}
	var err error
	if s.forward, err = natsx.ForwardMaxDeliveries(ctx, s.nc, s.js, natsx.StreamSignals, DurableSignals, s.log); err != nil {
		_ = s.stopConsumer(ctx)
		return fail(fmt.Errorf("pipeline: signals dead-letter forwarder: %w", err))
	}
	return nil
}

func (s *Signals) stopConsumer(ctx context.Context) error {
	if s.cons != nil {
		return s.cons.Stop(ctx)
	}
	if s.cc != nil {
		s.cc.Drain()
		select {
		case <-s.cc.Closed():
		case <-ctx.Done():
			return fmt.Errorf("pipeline: stop signals consumer: %w", ctx.Err())
		}
	}
	return nil
}

// Stop stops fetching, finishes the signals in hand and stops the batcher. Signals
// received but not yet matched are left unacknowledged; JetStream redelivers them.
func (s *Signals) Stop(ctx context.Context) error {
	err := s.stopConsumer(ctx)
	if s.forward != nil {
		s.forward()
	}
	close(s.quit)
	s.wg.Wait()
	return err
}

var errStopping = errors.New("pipeline: stopping")

// decode reads a SignalReceived message into a job.
func decode(m jetstream.Msg) (*job, error) {
	var sr signalsv1.SignalReceived
	if err := proto.Unmarshal(m.Data(), &sr); err != nil {
		return nil, natsx.Permanent(fmt.Errorf("signal on %s: not a SignalReceived: %w", m.Subject(), err))
	}
	portal := natsx.PortalOf(m.Subject())
	if p := sr.GetMeta().GetPortalId(); p != "" && p != portal {
		return nil, natsx.Permanent(fmt.Errorf("signal on %s names portal %q in its meta", m.Subject(), p))
	}
	if sr.GetSignal() == nil {
		return nil, natsx.Permanent(fmt.Errorf("signal on %s has no signal", m.Subject()))
	}
	id := sr.GetMeta().GetEventId()
	if id == "" {
		id = m.Headers().Get(natsx.HeaderMsgID)
	}
	if id == "" {
		return nil, natsx.Permanent(fmt.Errorf("signal on %s has no event id: its match could not be published idempotently", m.Subject()))
	}
	return &job{portal: portal, sr: &sr, id: id}, nil
}

// handle is the natsx handler (ModeNatsx): decode, hand to the batcher, wait for the batch.
func (s *Signals) handle(ctx context.Context, m jetstream.Msg) error {
	j, err := decode(m)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	j.ctx, j.finish = ctx, func(err error) { done <- err }
	select {
	case s.in <- j:
	case <-s.quit:
		return errStopping
	}
	select {
	case err := <-done:
		return err
	case <-s.stopped:
		select {
		case err := <-done:
			return err
		default:
			return errStopping // queued after the batcher stopped: redelivered later
		}
	}
}

// receive is the ModeBatch consume callback: it hands the signal to the batcher and
// returns at once; the message is settled when its batch is done.
func (s *Signals) receive(m jetstream.Msg) {
	j, err := decode(m)
	if err != nil {
		s.settle(m, err)
		return
	}
	j.ctx = otel.GetTextMapPropagator().Extract(context.Background(), natsx.HeaderCarrier(m.Headers()))
	j.finish = func(err error) { s.settle(m, err) }
	select {
	case s.in <- j:
	case <-s.quit:
		// Not acknowledged: redelivered after AckWait.
	}
}

// settle applies the handler contract of natsx.Consume to one message of ModeBatch.
func (s *Signals) settle(m jetstream.Msg, err error) {
	switch {
	case err == nil:
		if aerr := m.Ack(); aerr != nil {
			s.log.Warn("ack failed; the signal will be redelivered and its match de-duplicated", "err", aerr)
		}
	case natsx.IsPermanent(err):
		if dlErr := s.deadLetter(m, err); dlErr != nil {
			s.log.Error("dead-letter publish failed; redelivering", "err", err, "dlq_err", dlErr)
			s.nak(m)
			return
		}
		s.log.Warn("permanent failure: signal dead-lettered", "subject", m.Subject(), "err", err)
		_ = m.TermWithReason(truncate(err.Error(), 256))
	default:
		s.nak(m)
	}
}

func (s *Signals) nak(m jetstream.Msg) {
	var n uint64 = 1
	if md, err := m.Metadata(); err == nil {
		n = md.NumDelivered
	}
	if err := m.NakWithDelay(natsx.DefaultBackoff(n)); err != nil {
		s.log.Warn("nak failed; the server redelivers after AckWait", "err", err)
	}
}

// deadLetter publishes m to dlq.SIGNALS.matcher-signals as natsx.Consume does: payload
// and headers (minus Nats-* control headers), the reason and the origin in Sb-Dlq-*
// headers, Nats-Msg-Id dlq:<stream>:<seq>.
func (s *Signals) deadLetter(m jetstream.Msg, cause error) error {
	md, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	h := nats.Header{}
	for k, v := range m.Headers() {
		if len(k) >= 5 && k[:5] == "Nats-" {
			continue
		}
		h[k] = v
	}
	if id := m.Headers().Get(natsx.HeaderMsgID); id != "" {
		h.Set(natsx.HeaderDLQMsgID, id)
	}
	h.Set(natsx.HeaderMsgID, natsx.DLQMsgID(md.Stream, md.Sequence.Stream))
	h.Set(natsx.HeaderDLQReason, truncate(cause.Error(), 1024))
	h.Set(natsx.HeaderDLQSubject, m.Subject())
	h.Set(natsx.HeaderDLQStream, md.Stream)
	h.Set(natsx.HeaderDLQStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	h.Set(natsx.HeaderDLQConsumer, DurableSignals)
	h.Set(natsx.HeaderDLQDeliveries, strconv.FormatUint(md.NumDelivered, 10))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = s.js.PublishMsg(ctx, &nats.Msg{Subject: natsx.DLQSubject(md.Stream, DurableSignals), Header: h, Data: m.Data()})
	return err
}

// truncate makes s one line of at most n bytes.
func truncate(s string, n int) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// dispatch collects jobs into batches and runs up to Concurrency batches at once.
func (s *Signals) dispatch() {
	defer s.wg.Done()
	defer close(s.stopped)
	var running sync.WaitGroup
	defer running.Wait()
	for {
		var first *job
		select {
		case first = <-s.in:
		case <-s.quit:
			for { // refuse what is still queued; those messages are redelivered
				select {
				case j := <-s.in:
					j.finish(errStopping)
				default:
					return
				}
			}
		}
		// Wait for a free slot first: signals keep queueing meanwhile, so a busy
		// publisher makes the next batch bigger instead of making more batches.
		s.sem <- struct{}{}
		batch := []*job{first}
		timer := time.NewTimer(s.opts.Linger)
	collect:
		for len(batch) < s.opts.MaxBatch {
			select {
			case j := <-s.in:
				batch = append(batch, j)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		running.Add(1)
		go func() {
			defer running.Done()
			defer func() { <-s.sem }()
			s.process(batch)
		}()
	}
}

// process matches a batch (one resolver call per portal) and publishes the results as
// atomic batches; every job learns its outcome.
func (s *Signals) process(batch []*job) {
	links := make([]trace.Link, 0, len(batch))
	for _, j := range batch {
		if sc := trace.SpanContextFromContext(j.ctx); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx, span := s.tracer.Start(context.Background(), "match signals", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...), trace.WithAttributes(attribute.Int("messaging.batch.message_count", len(batch))))
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s.batchSize.Record(ctx, int64(len(batch)))

	errs := make([]error, len(batch))
	byPortal := map[string][]int{}
	for i, j := range batch {
		byPortal[j.portal] = append(byPortal[j.portal], i)
	}
	var msgs []*nats.Msg
	var owners []int // batch index of each message
	var outcomes []string
	for portal, idx := range byPortal {
		qs := make([]resolve.Query, len(idx))
		for k, i := range idx {
			qs[k] = query(batch[i].sr.GetSignal())
		}
		answers, err := s.res.Resolve(ctx, portal, qs)
		if err != nil {
			for _, i := range idx {
				errs[i] = err
			}
			continue
		}
		for k, i := range idx {
			ev := s.matchedEvent(batch[i], answers[k])
			m, err := natsx.NewMsg(ctx, natsx.SignalMatchedSubject(portal), ev.GetMeta().GetEventId(), ev)
			if err != nil {
				errs[i] = natsx.Permanent(err)
				continue
			}
			msgs = append(msgs, m)
			owners = append(owners, i)
			outcome := "matched"
			if ev.Company == nil {
				outcome = "unmatched"
			}
			outcomes = append(outcomes, outcome)
		}
	}
	for start := 0; start < len(msgs); start += natsx.MaxBatchSize {
		end := min(start+natsx.MaxBatchSize, len(msgs))
		if _, err := s.pub.PublishBatch(ctx, msgs[start:end]); err != nil {
			for _, i := range owners[start:end] {
				errs[i] = err
			}
			continue
		}
		for k := start; k < end; k++ {
			s.matched.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcomes[k])))
		}
	}
	for i, j := range batch {
		if errs[i] != nil {
			s.failed.Add(ctx, 1)
			span.RecordError(errs[i])
		}
		j.finish(errs[i])
	}
}

// query turns a signal into a resolver query. The signal was validated and normalised by
// ingest; values that still fail normalisation are left out.
func query(sig *signalsv1.Signal) resolve.Query {
	a, _ := match.NormalizeAccount(sig.GetAccount().GetDomain(), sig.GetAccount().GetAliases())
	q := resolve.Query{Account: a}
	if e := sig.GetVisitor().GetEmail(); e != "" {
		if email, err := match.NormalizeEmail(e); err == nil {
			q.Email = email
		}
	}
	return q
}

// matchedEvent builds the SignalMatched for a job.
func (s *Signals) matchedEvent(j *job, a resolve.Answer) *signalsv1.SignalMatched {
	meta := j.sr.GetMeta()
	corr := meta.GetCorrelationId()
	if corr == "" {
		corr = j.id
	}
	ev := &signalsv1.SignalMatched{
		Meta: &eventsv1.EventMeta{
			EventId:       MatchedID(j.id),
			PortalId:      j.portal,
			OccurredAt:    j.sr.GetSignal().GetOccurredAt(),
			Producer:      s.opts.Producer,
			CorrelationId: corr,
			CausationId:   j.id,
			PublishedAt:   timestamppb.New(s.opts.Now()),
		},
		Signal:  j.sr.GetSignal(),
		Company: a.Account.Proto(),
		Contact: a.Contact.Proto(),
	}
	if ev.Company == nil {
		ev.UnmatchedReason = a.Account.Unmatched
	}
	return ev
}
