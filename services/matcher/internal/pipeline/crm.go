package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	hubspotv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/hubspot/v1"
	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/services/matcher/internal/batch"
	"github.com/signalbridge/signalbridge/services/matcher/internal/mirror"
)

// CRMOptions configure CRM.
type CRMOptions struct {
	// Workers is the number of parallel consume loops (default 32); re-reads of records
	// named by concurrent events share batch reads, so more workers mean fewer calls.
	Workers int
	// Linger is how long a re-read waits for others to share its batch read (default 20ms).
	Linger time.Duration
	Tracer trace.TracerProvider
	Logger *slog.Logger
}

// CRM applies HubSpot change events (hubspot.v1.<portal>.<company|contact|deal>.<event>)
// to the mirror. Every event, whatever its kind (creation, property change, deletion,
// restore, merge, association change), re-reads the records it names with the batch
// read API at webhook priority: the mirror then holds HubSpot's current state, whatever
// order events arrive in, and records HubSpot no longer has leave the index.
type CRM struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	reader  *mirror.Reader
	clients mirror.ClientFunc
	opts    CRMOptions
	log     *slog.Logger
	refresh *batch.Batcher[string, bool]

	cons    *natsx.Consumer
	forward func()
}

// NewCRM returns a CRM; Start runs it.
func NewCRM(nc *nats.Conn, js jetstream.JetStream, reader *mirror.Reader, clients mirror.ClientFunc, opts CRMOptions) *CRM {
	if opts.Workers <= 0 {
		opts.Workers = 32
	}
	if opts.Linger <= 0 {
		opts.Linger = 20 * time.Millisecond
	}
	if opts.Tracer == nil {
		opts.Tracer = otel.GetTracerProvider()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &CRM{nc: nc, js: js, reader: reader, clients: clients, opts: opts, log: opts.Logger}
	c.refresh = batch.New(c.fetch, batch.Options{
		Max: hubspot.MaxBatchSize, Linger: opts.Linger, Concurrency: 4,
		Context: func(ctx context.Context) context.Context { return hubspot.WithClass(ctx, quota.Webhook) },
	})
	return c
}

// Stats returns the re-read batcher's counters.
func (c *CRM) Stats() batch.Stats { return c.refresh.Stats() }

// CRMSubjects are the HubSpot event subjects the matcher consumes.
func CRMSubjects() []string {
	return []string{
		natsx.HubSpotEventSubject("*", "company", ">"),
		natsx.HubSpotEventSubject("*", "contact", ">"),
		natsx.HubSpotEventSubject("*", "deal", ">"),
	}
}

// Start creates the durable consumer matcher-crm-events and its dead-letter forwarder.
func (c *CRM) Start(ctx context.Context) error {
	var err error
	c.cons, err = natsx.Consume(ctx, c.js, natsx.ConsumerSpec{
		Stream:         natsx.StreamHubSpot,
		Durable:        DurableCRMEvents,
		FilterSubjects: CRMSubjects(),
		Workers:        c.opts.Workers,
		MaxAckPending:  c.opts.Workers * 8,
		TracerProvider: c.opts.Tracer,
	}, c.handle, c.log)
	if err != nil {
		return fmt.Errorf("pipeline: crm events consumer: %w", err)
	}
	if c.forward, err = natsx.ForwardMaxDeliveries(ctx, c.nc, c.js, natsx.StreamHubSpot, DurableCRMEvents, c.log); err != nil {
		_ = c.cons.Stop(ctx)
		return fmt.Errorf("pipeline: crm events dead-letter forwarder: %w", err)
	}
	return nil
}

// Stop stops fetching and finishes the events in hand.
func (c *CRM) Stop(ctx context.Context) error {
	var err error
	if c.cons != nil {
		err = c.cons.Stop(ctx)
	}
	if c.forward != nil {
		c.forward()
	}
	return err
}

// objectOf maps HubSpot's object names (in subscription and association types) to the
// mirror's objects.
func objectOf(name string) (mirror.Object, bool) {
	switch strings.ToLower(name) {
	case "company", "companies":
		return mirror.Companies, true
	case "contact", "contacts":
		return mirror.Contacts, true
	case "deal", "deals":
		return mirror.Deals, true
	}
	return "", false
}

// Targets returns the records an event asks to re-read, per object.
func Targets(ev *hubspotv1.HubSpotEvent) map[mirror.Object][]string {
	out := map[mirror.Object][]string{}
	add := func(obj mirror.Object, ids ...int64) {
		for _, id := range ids {
			if id > 0 {
				out[obj] = append(out[obj], strconv.FormatInt(id, 10))
			}
		}
	}
	objName, kind, _ := strings.Cut(ev.GetSubscriptionType(), ".")
	obj, ok := objectOf(objName)
	if !ok {
		return out
	}
	switch kind {
	case "associationChange":
		from, to, _ := strings.Cut(ev.GetAssociationType(), "_TO_")
		if fo, ok := objectOf(from); ok {
			add(fo, ev.GetFromObjectId())
		}
		if tobj, ok := objectOf(to); ok {
			add(tobj, ev.GetToObjectId())
		}
	case "merge":
		add(obj, ev.GetPrimaryObjectId(), ev.GetNewObjectId(), ev.GetObjectId())
		add(obj, ev.GetMergedObjectIds()...)
	default: // creation, propertyChange, deletion, restore, privacyDeletion, ...
		add(obj, ev.GetObjectId())
	}
	for o, ids := range out {
		seen := map[string]bool{}
		uniq := ids[:0]
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				uniq = append(uniq, id)
			}
		}
		out[o] = uniq
	}
	return out
}

func (c *CRM) handle(ctx context.Context, m jetstream.Msg) error {
	var ev hubspotv1.HubSpotEvent
	if err := proto.Unmarshal(m.Data(), &ev); err != nil {
		return natsx.Permanent(fmt.Errorf("event on %s: not a HubSpotEvent: %w", m.Subject(), err))
	}
	portal := natsx.PortalOf(m.Subject())
	if portal == "" {
		return natsx.Permanent(fmt.Errorf("event on %s: no portal in the subject", m.Subject()))
	}
	for obj, ids := range Targets(&ev) {
		if _, err := c.refresh.Get(ctx, portal+"/"+string(obj), ids); err != nil {
			return err
		}
	}
	return nil
}

// fetch re-reads one batch of records of one portal and object.
func (c *CRM) fetch(ctx context.Context, group string, ids []string) (map[string]bool, error) {
	portal, obj, _ := strings.Cut(group, "/")
	hc, err := c.clients(portal)
	if err != nil {
		return nil, natsx.Permanent(fmt.Errorf("hubspot client of portal %s: %w", portal, err))
	}
	res, err := c.reader.Refresh(ctx, portal, hc, mirror.Object(obj), ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ids))
	for _, id := range res.Found {
		out[id] = true
	}
	return out, nil
}
