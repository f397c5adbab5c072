// Package intake validates and normalises submitted signals and scores, turns the valid ones
// into events and publishes them to JetStream as one atomic batch per request. It is shared by
// every front door of the ingest service (HTTP, gRPC, NATS request).
package intake

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/portal"
)

// MaxBatch is the largest number of items one request (or one stream chunk) may carry. It is
// also the largest atomic batch nats-server accepts by default.
const MaxBatch = 1000

// Errors returned to the front doors, which map them to their own status codes.
var (
	// ErrUnauthenticated: no key, or a key no portal knows.
	ErrUnauthenticated = errors.New("missing or invalid API key")
	// ErrForbidden: a valid key of another portal.
	ErrForbidden = errors.New("API key is not valid for this portal")
	// ErrTooMany: more items than MaxBatch.
	ErrTooMany = fmt.Errorf("a batch holds at most %d items", MaxBatch)
	// ErrEmpty: no items at all.
	ErrEmpty = errors.New("batch is empty")
)

// Status is the outcome of one item.
type Status int

// Item outcomes.
const (
	Accepted Status = iota + 1
	Duplicate
	Rejected
)

// String returns the lower-case name used in JSON responses.
func (s Status) String() string {
	switch s {
	case Accepted:
		return "accepted"
	case Duplicate:
		return "duplicate"
	case Rejected:
		return "rejected"
	}
	return "unknown"
}

// FieldError names one invalid field of an item.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Result is the outcome of one item, in submission order.
type Result struct {
	Index  int          `json:"index"`
	ID     string       `json:"id,omitempty"`
	Status Status       `json:"-"`
	Errors []FieldError `json:"errors,omitempty"`
}

// Counts sums up results.
type Counts struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
}

// Add counts one result.
func (c *Counts) Add(r Result) {
	switch r.Status {
	case Accepted:
		c.Accepted++
	case Duplicate:
		c.Duplicates++
	case Rejected:
		c.Rejected++
	}
}

// Portals is the live portal configuration (a *portal.Registry).
type Portals interface {
	Get(portalID string) (*portal.Config, bool)
	Portals() []string
}

// Publisher stores a batch of messages atomically (a *natsx.Publisher).
type Publisher interface {
	PublishBatch(ctx context.Context, msgs []*nats.Msg) (natsx.BatchResult, error)
}

// Options tune validation.
type Options struct {
	// Producer is written into every EventMeta, for example "ingest/0.1.0".
	Producer string
	// MaxFutureSkew is how far in the future a timestamp may be (clock skew allowance).
	MaxFutureSkew time.Duration
	// MaxAge is how old a timestamp may be.
	MaxAge time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Intake is the shared core of the ingest front doors. It is safe for concurrent use.
type Intake struct {
	portals Portals
	pub     Publisher
	opts    Options
	log     *slog.Logger

	items   metric.Int64Counter
	batches metric.Int64Histogram
}

// New returns an Intake publishing through pub.
func New(portals Portals, pub Publisher, opts Options, meter metric.Meter, log *slog.Logger) (*Intake, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxFutureSkew <= 0 {
		opts.MaxFutureSkew = 5 * time.Minute
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 365 * 24 * time.Hour
	}
	if opts.Producer == "" {
		opts.Producer = "ingest"
	}
	items, err := meter.Int64Counter("signalbridge.ingest.items",
		metric.WithDescription("Items submitted to ingest, by kind and outcome."))
	if err != nil {
		return nil, fmt.Errorf("intake: metric: %w", err)
	}
	batches, err := meter.Int64Histogram("signalbridge.ingest.batch.size",
		metric.WithDescription("Accepted items published per atomic batch."))
	if err != nil {
		return nil, fmt.Errorf("intake: metric: %w", err)
	}
	return &Intake{portals: portals, pub: pub, opts: opts, log: log, items: items, batches: batches}, nil
}

// Authorize checks that key is an ingest API key of portalID and returns the key's name.
// A key of another portal is ErrForbidden; an unknown or missing key is ErrUnauthenticated.
func (in *Intake) Authorize(portalID, key string) (string, error) {
	if key == "" {
		return "", ErrUnauthenticated
	}
	if cfg, ok := in.portals.Get(portalID); ok {
		if name, ok := cfg.AuthenticateKey(key); ok {
			return name, nil
		}
	}
	// Tell a key of another portal apart from garbage, so the caller learns which it is.
	// The scan compares hashes in constant time per portal.
	for _, id := range in.portals.Portals() {
		if subtle.ConstantTimeCompare([]byte(id), []byte(portalID)) == 1 {
			continue
		}
		if cfg, ok := in.portals.Get(id); ok {
			if _, ok := cfg.AuthenticateKey(key); ok {
				return "", ErrForbidden
			}
		}
	}
	return "", ErrUnauthenticated
}

// pending is one valid item ready to publish.
type pending struct {
	index int
	msg   *nats.Msg
}

// publish stores the messages of the valid items as one atomic batch and fills in their results.
func (in *Intake) publish(ctx context.Context, kind string, ready []pending, results []Result) error {
	if len(ready) == 0 {
		return nil
	}
	msgs := make([]*nats.Msg, len(ready))
	for i, p := range ready {
		msgs[i] = p.msg
	}
	res, err := in.pub.PublishBatch(ctx, msgs)
	if err != nil {
		return fmt.Errorf("publish %d %s: %w", len(msgs), kind, err)
	}
	for i, p := range ready {
		if i < len(res.Duplicates) && res.Duplicates[i] {
			results[p.index].Status = Duplicate
		} else {
			results[p.index].Status = Accepted
		}
	}
	in.batches.Record(ctx, int64(len(msgs)), metric.WithAttributes(attribute.String("kind", kind)))
	return nil
}

// count records the outcomes in the metrics and returns their totals.
func (in *Intake) count(ctx context.Context, kind string, results []Result) Counts {
	var c Counts
	for _, r := range results {
		c.Add(r)
	}
	for status, n := range map[Status]int{Accepted: c.Accepted, Duplicate: c.Duplicates, Rejected: c.Rejected} {
		if n > 0 {
			in.items.Add(ctx, int64(n), metric.WithAttributes(
				attribute.String("kind", kind), attribute.String("outcome", status.String())))
		}
	}
	return c
}

func checkSize(n int) error {
	switch {
	case n == 0:
		return ErrEmpty
	case n > MaxBatch:
		return fmt.Errorf("%w (got %d)", ErrTooMany, n)
	}
	return nil
}
