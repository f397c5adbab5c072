// Package intake folds ScoreUpdated events from the SCORES stream into the scores table.
//
// The score store wants thousands of scores per write (one part per portal per batch), so
// intake consumes the durable consumer score-sync-scores with natsx.ConsumeBatch: a message is
// acknowledged only once its score is stored (the part is in the object store and listed in
// the manifest); a message that cannot be decoded is dead-lettered to
// dlq.SCORES.score-sync-scores and terminated; when the store write fails, the batch's
// messages of that portal are nak'd with natsx.DefaultBackoff, and dead-lettered once they
// have been delivered MaxDeliver times. Storing the same score twice is harmless: the table
// keeps one row per domain (the newest scored_at).
package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
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

// Intake is a running intake consumer.
type Intake struct {
	table *store.Table
	opts  Options
	log   *slog.Logger
	cons  *natsx.BatchConsumer
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
	// What happened to each score (acked, retried, dead-lettered) is the
	// batch consumer's metric signalbridge.natsx.consume.messages
	// {messaging.nats.stream=SCORES, messaging.consumer.group.name=<durable>, outcome}.
	in := &Intake{table: table, opts: opts, log: opts.Logger.With("consumer", opts.Durable)}
	var err error
	in.cons, err = natsx.ConsumeBatch(ctx, js, natsx.BatchSpec{
		Stream:         natsx.StreamScores,
		Durable:        opts.Durable,
		Description:    "score-sync: latest score per account into the scores table",
		FilterSubjects: []string{natsx.ScoreUpdatedSubject("*")},
		MaxDeliver:     opts.MaxDeliver,
		AckWait:        opts.AckWait,
		// Every replica may hold a full batch in flight.
		MaxAckPending:  8 * opts.Batch,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		MaxMessages:    opts.Batch,
		MaxWait:        opts.Linger,
		TracerProvider: opts.Tracer,
		MeterProvider:  opts.Meter,
	}, in.handle, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("intake: %w", err)
	}
	return in, nil
}

// Stop stops fetching, lets the batch in hand finish, and waits for it or for ctx.
func (in *Intake) Stop(ctx context.Context) error {
	if err := in.cons.Stop(ctx); err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	return nil
}

// portalBatch is the part of a batch that belongs to one portal.
type portalBatch struct {
	rows []store.Row
	idx  []int // message index of each row
}

// handle folds one batch: one part per portal; it returns the outcome of every message.
func (in *Intake) handle(ctx context.Context, msgs []jetstream.Msg) []error {
	errs := make([]error, len(msgs))
	byPortal := map[string]*portalBatch{}
	var order []string
	for i, m := range msgs {
		portal, r, err := decode(m)
		if err != nil {
			errs[i] = natsx.Permanent(fmt.Errorf("score on %s: %w", m.Subject(), err))
			continue
		}
		b := byPortal[portal]
		if b == nil {
			b = &portalBatch{}
			byPortal[portal] = b
			order = append(order, portal)
		}
		b.rows = append(b.rows, r)
		b.idx = append(b.idx, i)
	}
	for _, portal := range order {
		b := byPortal[portal]
		parts, err := in.table.Append(ctx, portal, b.rows)
		if err != nil {
			in.log.Warn("storing scores failed; messages will be redelivered", "portal", portal, "scores", len(b.rows), "err", err)
			for _, i := range b.idx {
				errs[i] = fmt.Errorf("store %d scores of portal %s: %w", len(b.rows), portal, err)
			}
			continue
		}
		in.log.Debug("scores stored", "portal", portal, "scores", len(b.rows), "parts", parts)
		if in.opts.OnAppend != nil {
			in.opts.OnAppend(portal, parts)
		}
	}
	return errs
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
