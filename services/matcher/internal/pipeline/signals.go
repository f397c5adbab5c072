// Package pipeline runs the matcher's JetStream consumers: SignalReceived in,
// SignalMatched out (matched or not, with the evidence), and HubSpot change events
// applied to the CRM mirror.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
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
	// ModeBatch consumes signals with natsx.ConsumeBatch: hundreds of signals are in
	// flight, matched in one resolver call per portal, published as one atomic batch and
	// then settled by natsx's handler contract (ack on success; nak with
	// natsx.DefaultBackoff on a transient failure; dead letter first, then term, on a
	// permanent one; dead letter after MaxDeliver).
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
	// Concurrency is the number of batches in flight (default 3).
	Concurrency int
	// MaxAckPending bounds unacknowledged signals (default (Concurrency + 2) × MaxBatch in ModeBatch,
	// natsx.DefaultPullMaxMessages × Workers in ModeNatsx).
	MaxAckPending int
	// Producer is written into every event ("matcher/<version>").
	Producer string
	Now      func() time.Time
	Tracer   trace.TracerProvider
	Meter    metric.Meter
	// MeterProvider carries the consumer's own metrics (natsx); the global one when nil.
	MeterProvider metric.MeterProvider
	Logger        *slog.Logger
}

// Signals consumes SignalReceived and publishes SignalMatched.
type Signals struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	res  *resolve.Resolver
	pub  *natsx.Publisher
	opts SignalsOptions
	log  *slog.Logger

	tracer  trace.Tracer
	matched metric.Int64Counter
	// outcomeAttrs are the attribute options of matched, built once.
	outcomeAttrs map[string]metric.AddOption
	failed       metric.Int64Counter
	batchSize    metric.Int64Histogram

	// ModeNatsx: natsx.Consume workers hand signals to dispatch, which batches them.
	in      chan *job
	quit    chan struct{} // closed by Stop
	stopped chan struct{} // closed when dispatch has returned
	sem     chan struct{}
	wg      sync.WaitGroup
	cons    *natsx.Consumer
	forward func()

	batch *natsx.BatchConsumer // ModeBatch
	norm  *match.DomainMemo
}

// job is one signal of a batch.
type job struct {
	ctx    context.Context // ModeNatsx: the consumer span's context, linked from the batch span
	portal string
	sr     *signalsv1.SignalReceived
	// signal is the wire encoding of sr's Signal as received, when the message held it
	// once (see signalBytes): SignalMatched carries it as it is.
	signal []byte
	id     string      // event id of the signal
	finish func(error) // ModeNatsx: hands the outcome back to the waiting worker
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
		opts.Concurrency = 3
	}
	if opts.MaxAckPending <= 0 {
		// The batches being matched, and as many again fetched meanwhile.
		opts.MaxAckPending = (opts.Concurrency + 2) * opts.MaxBatch
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
		sem: make(chan struct{}, opts.Concurrency), norm: match.NewDomainMemo(domainMemoSize),
	}
	var err error
	if s.matched, err = opts.Meter.Int64Counter("signalbridge.matcher.signals", metric.WithDescription("signals matched and published, by outcome")); err != nil {
		return nil, err
	}
	s.outcomeAttrs = map[string]metric.AddOption{}
	for _, o := range []string{outcomeMatched, outcomeUnmatched} {
		s.outcomeAttrs[o] = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", o)))
	}
	if s.failed, err = opts.Meter.Int64Counter("signalbridge.matcher.signal_failures", metric.WithDescription("signals that could not be matched or published this delivery")); err != nil {
		return nil, err
	}
	if s.batchSize, err = opts.Meter.Int64Histogram("signalbridge.matcher.match_batch_size", metric.WithDescription("signals matched and published together")); err != nil {
		return nil, err
	}
	return s, nil
}

// Start creates the durable consumer matcher-signals on signals.v1.*.received and its
// dead-letter forwarder, and starts matching.
func (s *Signals) Start(ctx context.Context) error {
	if s.opts.Mode == ModeBatch {
		cons, err := natsx.ConsumeBatch(ctx, s.js, natsx.BatchSpec{
			Stream:         natsx.StreamSignals,
			Durable:        DurableSignals,
			FilterSubjects: []string{natsx.SignalReceivedSubject("*")},
			MaxAckPending:  s.opts.MaxAckPending,
			MaxMessages:    s.opts.MaxBatch,
			MaxWait:        s.opts.Linger,
			Concurrency:    s.opts.Concurrency,
			TracerProvider: s.opts.Tracer,
			MeterProvider:  s.opts.MeterProvider,
		}, s.handleBatch, s.log)
		if err != nil {
			return fmt.Errorf("pipeline: signals consumer: %w", err)
		}
		s.batch = cons
		return nil
	}
	s.wg.Add(1)
	go s.dispatch()
	fail := func(err error) error {
		close(s.quit)
		s.wg.Wait()
		return err
	}
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
	if s.forward, err = natsx.ForwardMaxDeliveries(ctx, s.nc, s.js, natsx.StreamSignals, DurableSignals, s.log); err != nil {
		_ = cons.Stop(ctx)
		return fail(fmt.Errorf("pipeline: signals dead-letter forwarder: %w", err))
	}
	return nil
}

// Stop stops fetching and finishes the signals in hand. ModeBatch: the batches being
// matched are published and acknowledged, signals received but not yet in a batch are
// given back for redelivery. ModeNatsx: signals queued but not yet matched are nak'd.
func (s *Signals) Stop(ctx context.Context) error {
	if s.batch != nil {
		return s.batch.Stop(ctx)
	}
	var err error
	if s.cons != nil {
		err = s.cons.Stop(ctx)
	}
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
	return &job{portal: portal, sr: &sr, signal: signalBytes(m.Data()), id: id}, nil
}

// Field numbers of the Signal in SignalReceived and in SignalMatched, from the schema.
var (
	receivedSignalField = (&signalsv1.SignalReceived{}).ProtoReflect().Descriptor().Fields().ByName("signal").Number()
	matchedSignalField  = (&signalsv1.SignalMatched{}).ProtoReflect().Descriptor().Fields().ByName("signal").Number()
)

// signalBytes returns the wire bytes of the Signal in an encoded SignalReceived (one
// that proto.Unmarshal accepted), or nil unless the field occurs exactly once: a
// message field written several times is the merge of its parts, which only decoding
// can tell.
func signalBytes(data []byte) []byte {
	var found []byte
	n := 0
	for len(data) > 0 {
		num, typ, tagLen := protowire.ConsumeTag(data)
		if tagLen < 0 {
			return nil
		}
		valLen := protowire.ConsumeFieldValue(num, typ, data[tagLen:])
		if valLen < 0 {
			return nil
		}
		if num == receivedSignalField && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(data[tagLen:])
			found, n = v, n+1
		}
		data = data[tagLen+valLen:]
	}
	if n != 1 {
		return nil
	}
	return found
}

// encodeMatched encodes ev. With the received wire bytes of its Signal (signal, from
// signalBytes), those are appended as the Signal field instead of encoding ev.Signal
// again: fields may come in any order, and decoding them gives ev.Signal back. Most of
// a SignalMatched is its Signal, so this saves most of the encoding.
func encodeMatched(ev *signalsv1.SignalMatched, signal []byte) ([]byte, error) {
	if signal == nil {
		return proto.Marshal(ev)
	}
	sig := ev.Signal
	ev.Signal = nil
	// Size once and encode with the sizes it cached, into a buffer with room for
	// the Signal.
	size := proto.Size(ev) + protowire.SizeTag(matchedSignalField) + protowire.SizeBytes(len(signal))
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(make([]byte, 0, size), ev)
	ev.Signal = sig
	if err != nil {
		return nil, err
	}
	b = protowire.AppendTag(b, matchedSignalField, protowire.BytesType)
	return protowire.AppendBytes(b, signal), nil
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

// handleBatch is the natsx.ConsumeBatch handler (ModeBatch): decode, match, publish.
func (s *Signals) handleBatch(ctx context.Context, msgs []jetstream.Msg) []error {
	errs := make([]error, len(msgs))
	jobs := make([]*job, 0, len(msgs))
	owners := make([]int, 0, len(msgs)) // message index of each job
	for i, m := range msgs {
		j, err := decode(m)
		if err != nil {
			errs[i] = err
			continue
		}
		jobs = append(jobs, j)
		owners = append(owners, i)
	}
	if len(jobs) > 0 {
		for k, err := range s.process(ctx, jobs) {
			errs[owners[k]] = err
		}
	}
	return errs
}

// dispatch collects the jobs of the natsx.Consume workers (ModeNatsx) into batches and
// runs up to Concurrency batches at once.
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
			errs := s.process(context.Background(), batch)
			for i, j := range batch {
				j.finish(errs[i])
			}
		}()
	}
}

// process matches a batch (one resolver call per portal) and publishes the results as
// atomic batches; it returns the outcome of every job. Its span is a child of ctx (the
// natsx batch span in ModeBatch) linked to the jobs' own contexts (ModeNatsx).
func (s *Signals) process(ctx context.Context, batch []*job) []error {
	var links []trace.Link
	for _, j := range batch {
		if j.ctx == nil {
			continue
		}
		if sc := trace.SpanContextFromContext(j.ctx); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	kind := trace.SpanKindInternal // under the natsx batch span
	if !trace.SpanContextFromContext(ctx).IsValid() {
		kind = trace.SpanKindConsumer
	}
	ctx, span := s.tracer.Start(ctx, "match signals", trace.WithSpanKind(kind),
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
			qs[k] = query(s.norm, batch[i].sr.GetSignal())
		}
		answers, err := s.res.Resolve(ctx, portal, qs)
		if err != nil {
			for _, i := range idx {
				errs[i] = err
			}
			continue
		}
		subject := natsx.SignalMatchedSubject(portal)
		for k, i := range idx {
			ev := s.matchedEvent(batch[i], answers[k])
			data, err := encodeMatched(ev, batch[i].signal)
			if err != nil {
				errs[i] = natsx.Permanent(fmt.Errorf("encode SignalMatched %s: %w", ev.GetMeta().GetEventId(), err))
				continue
			}
			m, err := natsx.NewEncodedMsg(ctx, subject, ev.GetMeta().GetEventId(), matchedType, data)
			if err != nil {
				errs[i] = natsx.Permanent(err)
				continue
			}
			msgs = append(msgs, m)
			owners = append(owners, i)
			outcome := outcomeMatched
			if ev.Company == nil {
				outcome = outcomeUnmatched
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
		unmatched := 0
		for _, o := range outcomes[start:end] {
			if o == outcomeUnmatched {
				unmatched++
			}
		}
		s.count(ctx, outcomeMatched, end-start-unmatched)
		s.count(ctx, outcomeUnmatched, unmatched)
	}
	for _, err := range errs {
		if err != nil {
			s.failed.Add(ctx, 1)
			span.RecordError(err)
		}
	}
	return errs
}

// matchedType is the Sb-Event-Type of SignalMatched.
var matchedType = (&signalsv1.SignalMatched{}).ProtoReflect().Descriptor().FullName()

// Outcomes of signalbridge.matcher.signals.
const (
	outcomeMatched   = "matched"
	outcomeUnmatched = "unmatched"
)

// count adds n published signals of an outcome to signalbridge.matcher.signals.
func (s *Signals) count(ctx context.Context, outcome string, n int) {
	if n > 0 {
		s.matched.Add(ctx, int64(n), s.outcomeAttrs[outcome])
	}
}

// domainMemoSize bounds the account domains whose normalisation the pipeline remembers.
const domainMemoSize = 100_000

// query turns a signal into a resolver query. The signal was validated and normalised by
// ingest; values that still fail normalisation are left out.
func query(norm *match.DomainMemo, sig *signalsv1.Signal) resolve.Query {
	a, _ := norm.NormalizeAccount(sig.GetAccount().GetDomain(), sig.GetAccount().GetAliases())
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
