// Package intake folds ScoreUpdated events from the SCORES stream into the scores table.
//
// natsx.Consume handles one message per handler call and acknowledges it on its own; the
// score store wants thousands of scores per write (one part per portal per batch). So intake
// runs its own pull loop on the durable consumer score-sync-scores with the same contract:
// a message is acknowledged only once its score is stored (the part is in the object store and
// listed in the manifest); a message that cannot be decoded is dead-lettered to
// dlq.SCORES.score-sync-scores (headers as natsx writes them) and terminated; when the store
// write fails, the batch's messages of that portal are nak'd with natsx.DefaultBackoff.
// Storing the same score twice is harmless: the table keeps one row per domain (the newest
// scored_at).
package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	scoresv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scores/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/services/score-sync/internal/store"
)

// DefaultDurable is the consumer's durable name.
const DefaultDurable = "score-sync-scores"

// Options configure Start.
type Options struct {
	// Durable names the consumer; default DefaultDurable.
	Durable string
	// Batch is the most messages folded into one part per portal; default 10,000.
	Batch int
	// Linger is how long a fetch waits to fill a batch; default 1 s.
	Linger time.Duration
	// MaxDeliver bounds deliveries per message; default natsx.DefaultMaxDeliver.
	MaxDeliver int
	// AckWait is the consumer's ack wait; default 60 s.
	AckWait time.Duration
	// OnAppend, when set, is called after a part was added for a portal, with the number
	// of parts its manifest now has (the service compacts when there are many).
	OnAppend func(portal string, parts int)
	Logger   *slog.Logger
	Meter    metric.MeterProvider
	Tracer   trace.TracerProvider
}

// Intake is a running fold loop.
type Intake struct {
	js     jetstream.JetStream
	table  *store.Table
	opts   Options
	log    *slog.Logger
	tracer trace.Tracer
	count  metric.Int64Counter

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Start creates (or updates) the durable consumer on SCORES and starts folding.
func Start(ctx context.Context, js jetstream.JetStream, table *store.Table, opts Options) (*Intake, error) {
	if opts.Durable == "" {
		opts.Durable = DefaultDurable
	}
	if opts.Batch <= 0 {
		opts.Batch = 10_000
	}
	if opts.Linger <= 0 {
		opts.Linger = time.Second
	}
	if opts.MaxDeliver <= 0 {
		opts.MaxDeliver = natsx.DefaultMaxDeliver
	}
	if opts.AckWait <= 0 {
		opts.AckWait = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Meter == nil {
		opts.Meter = otel.GetMeterProvider()
	}
	if opts.Tracer == nil {
		opts.Tracer = otel.GetTracerProvider()
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, natsx.StreamScores, jetstream.ConsumerConfig{
		Durable:        opts.Durable,
		Description:    "score-sync: latest score per account into the scores table",
		FilterSubjects: []string{natsx.ScoreUpdatedSubject("*")},
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        opts.AckWait,
		MaxDeliver:     opts.MaxDeliver,
		// Every replica may hold a full batch in flight.
		MaxAckPending: 8 * opts.Batch,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("intake: create consumer %s on %s: %w", opts.Durable, natsx.StreamScores, err)
	}
	count, err := opts.Meter.Meter("signalbridge/score-sync").Int64Counter("sb.scoresync.intake.scores",
		metric.WithDescription("ScoreUpdated events handled by outcome (stored, dead_lettered, retried)"))
	if err != nil {
		return nil, fmt.Errorf("intake: metric: %w", err)
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in := &Intake{
		js: js, table: table, opts: opts, log: opts.Logger.With("consumer", opts.Durable),
		tracer: opts.Tracer.Tracer("signalbridge/score-sync/intake"), count: count,
		cancel: cancel, done: make(chan struct{}),
	}
	go in.loop(loopCtx, cons)
	return in, nil
}

// Stop stops fetching, lets the batch in hand finish, and waits for it or for ctx.
func (in *Intake) Stop(ctx context.Context) error {
	in.once.Do(in.cancel)
	select {
	case <-in.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("intake: stop: %w", ctx.Err())
	}
}

func (in *Intake) loop(ctx context.Context, cons jetstream.Consumer) {
	defer close(in.done)
	failures := 0
	for ctx.Err() == nil {
		batch, err := cons.Fetch(in.opts.Batch, jetstream.FetchMaxWait(in.opts.Linger))
		if err != nil {
			failures++
			in.log.Warn("fetch failed", "err", err, "failures", failures)
			sleep(ctx, min(time.Duration(failures)*200*time.Millisecond, 5*time.Second))
			continue
		}
		msgs := make([]jetstream.Msg, 0, 256)
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && len(msgs) == 0 {
			failures++
			in.log.Warn("fetch failed", "err", err, "failures", failures)
			sleep(ctx, min(time.Duration(failures)*200*time.Millisecond, 5*time.Second))
			continue
		}
		failures = 0
		if len(msgs) > 0 {
			// The batch in hand is finished even when Stop is called meanwhile.
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.opts.AckWait)
			in.process(pctx, msgs)
			cancel()
		}
	}
}

type portalBatch struct {
	rows []store.Row
	msgs []jetstream.Msg
}

// process folds one fetched batch.
func (in *Intake) process(ctx context.Context, msgs []jetstream.Msg) {
	links := make([]trace.Link, 0, min(len(msgs), 64))
	for _, m := range msgs[:min(len(msgs), 64)] {
		mctx := otel.GetTextMapPropagator().Extract(ctx, natsx.HeaderCarrier(m.Headers()))
		if sc := trace.SpanContextFromContext(mctx); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx, span := in.tracer.Start(ctx, "process "+natsx.ScoreUpdatedSubject(natsx.PortalPlaceholder)+" batch",
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(links...),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.consumer.group.name", in.opts.Durable),
			attribute.Int("messaging.batch.message_count", len(msgs))))
	defer span.End()

	byPortal := map[string]*portalBatch{}
	var order []string
	for _, m := range msgs {
		portal, r, err := decode(m)
		if err != nil {
			in.deadLetter(ctx, m, err)
			continue
		}
		b := byPortal[portal]
		if b == nil {
			b = &portalBatch{}
			byPortal[portal] = b
			order = append(order, portal)
		}
		b.rows = append(b.rows, r)
		b.msgs = append(b.msgs, m)
	}
	for _, portal := range order {
		b := byPortal[portal]
		parts, err := in.table.Append(ctx, portal, b.rows)
		if err != nil {
			span.RecordError(err)
			in.log.Warn("storing scores failed; messages will be redelivered", "portal", portal, "scores", len(b.rows), "err", err)
			for _, m := range b.msgs {
				n := uint64(1)
				if md, err := m.Metadata(); err == nil {
					n = md.NumDelivered
				}
				_ = m.NakWithDelay(natsx.DefaultBackoff(n))
			}
			in.count.Add(ctx, int64(len(b.msgs)), metric.WithAttributes(attribute.String("outcome", "retried")))
			continue
		}
		ack(ctx, b.msgs, in.log)
		in.count.Add(ctx, int64(len(b.msgs)), metric.WithAttributes(attribute.String("outcome", "stored")))
		in.log.Debug("scores stored", "portal", portal, "scores", len(b.rows), "parts", parts)
		if in.opts.OnAppend != nil {
			in.opts.OnAppend(portal, parts)
		}
	}
}

// ack acknowledges msgs: all but the last without waiting, the last waiting for the server,
// which (acks travelling in order on one connection) confirms them all.
func ack(ctx context.Context, msgs []jetstream.Msg, log *slog.Logger) {
	for _, m := range msgs[:len(msgs)-1] {
		if err := m.Ack(); err != nil {
			log.Warn("ack failed; the message will be redelivered and stored again", "err", err)
		}
	}
	if err := msgs[len(msgs)-1].DoubleAck(ctx); err != nil {
		log.Warn("ack failed; messages will be redelivered and stored again", "err", err)
	}
}

// decode turns one message into a scores-table row, or says why it cannot.
func decode(m jetstream.Msg) (string, store.Row, error) {
	portal := natsx.PortalOf(m.Subject())
	if err := natsx.ValidToken(portal); err != nil {
		return "", store.Row{}, fmt.Errorf("subject %q: portal: %w", m.Subject(), err)
	}
	var ev scoresv1.ScoreUpdated
	if err := proto.Unmarshal(m.Data(), &ev); err != nil {
		return "", store.Row{}, fmt.Errorf("not a ScoreUpdated: %w", err)
	}
	if p := ev.GetMeta().GetPortalId(); p != "" && p != portal {
		return "", store.Row{}, fmt.Errorf("meta.portal_id %q does not match subject portal %q", p, portal)
	}
	sc := ev.GetScore()
	if sc == nil || sc.GetDomain() == "" {
		return "", store.Row{}, errors.New("score.domain is empty")
	}
	vals, err := store.ValuesOf(sc)
	if err != nil {
		return "", store.Row{}, fmt.Errorf("score of %s: %w", sc.GetDomain(), err)
	}
	at := sc.GetScoredAt()
	if at == nil {
		at = ev.GetMeta().GetOccurredAt()
	}
	if at == nil || at.CheckValid() != nil {
		return "", store.Row{}, fmt.Errorf("score of %s: scored_at is missing or invalid", sc.GetDomain())
	}
	r, err := store.ScoreRow{Domain: sc.GetDomain(), Aliases: sc.GetAliases(), ScoredAt: at.AsTime(), Values: vals}.Row()
	return portal, r, err
}

// deadLetter publishes m with the reason to dlq.SCORES.<durable>, then terminates it; when the
// dead letter cannot be stored, m is nak'd so that it is tried again.
func (in *Intake) deadLetter(ctx context.Context, m jetstream.Msg, reason error) {
	md, mdErr := m.Metadata()
	var seq, deliveries uint64
	if mdErr == nil {
		seq, deliveries = md.Sequence.Stream, md.NumDelivered
	}
	h := nats.Header{}
	for k, v := range m.Headers() {
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		h[k] = v
	}
	if id := m.Headers().Get(natsx.HeaderMsgID); id != "" {
		h.Set(natsx.HeaderDLQMsgID, id)
	}
	h.Set(natsx.HeaderMsgID, natsx.DLQMsgID(natsx.StreamScores, seq))
	h.Set(natsx.HeaderDLQReason, truncate(reason.Error(), 1024))
	h.Set(natsx.HeaderDLQSubject, m.Subject())
	h.Set(natsx.HeaderDLQStream, natsx.StreamScores)
	h.Set(natsx.HeaderDLQStreamSeq, strconv.FormatUint(seq, 10))
	h.Set(natsx.HeaderDLQConsumer, in.opts.Durable)
	h.Set(natsx.HeaderDLQDeliveries, strconv.FormatUint(deliveries, 10))
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if mdErr != nil {
		in.log.Error("undecodable score and unreadable metadata; redelivering", "err", reason, "metadata_err", mdErr)
		_ = m.NakWithDelay(natsx.DefaultBackoff(1))
		return
	}
	subject := natsx.DLQSubject(natsx.StreamScores, in.opts.Durable)
	if _, err := in.js.PublishMsg(pctx, &nats.Msg{Subject: subject, Header: h, Data: m.Data()}); err != nil {
		in.log.Error("dead-letter publish failed; redelivering", "err", reason, "dlq_err", err)
		_ = m.NakWithDelay(natsx.DefaultBackoff(deliveries))
		in.count.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "retried")))
		return
	}
	in.log.Warn("undecodable score dead-lettered", "subject", m.Subject(), "stream_seq", seq, "err", reason, "dlq_subject", subject)
	_ = m.TermWithReason(truncate(reason.Error(), 256))
	in.count.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "dead_lettered")))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
