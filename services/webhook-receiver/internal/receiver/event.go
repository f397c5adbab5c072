package receiver

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/events/v1"
	hubspotv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/hubspot/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
)

// MsgID is the Nats-Msg-Id (and EventMeta.event_id) of a HubSpot event:
// "hs:<portalId>:<eventId>". HubSpot's retries of an event carry the same
// eventId, so the stream stores it once.
func MsgID(portalID string, eventID int64) string {
	return "hs:" + portalID + ":" + strconv.FormatInt(eventID, 10)
}

// Subject is hubspot.v1.<portal>.<object>.<event> for ev.
func Subject(portalID string, ev *Event) string {
	return natsx.HubSpotEventSubject(portalID, ev.Object, ev.Kind)
}

// IsEcho reports whether a change was made by our own app: changeSource
// INTEGRATION or API, and a sourceId naming appID, either bare ("987654") or
// labelled ("appId:987654"; a user id label never counts). appID 0 (no app
// configured) never matches.
func IsEcho(changeSource, sourceID string, appID int64) bool {
	if appID <= 0 {
		return false
	}
	switch strings.ToUpper(changeSource) {
	case "INTEGRATION", "API":
	default:
		return false
	}
	want := strconv.FormatInt(appID, 10)
	if sourceID == want {
		return true
	}
	label, id, ok := strings.Cut(sourceID, ":")
	return ok && id == want && !strings.EqualFold(label, "userId")
}

// encoder builds the JetStream messages of one request's events. It reuses
// one protobuf value and marshals every event into one buffer, and puts the
// request's trace context into every message's headers, computed once.
type encoder struct {
	ctx      context.Context
	producer string
	trace    map[string]string // header key -> value of the trace context

	ev   hubspotv1.HubSpotEvent
	meta eventsv1.EventMeta
	at   timestamppb.Timestamp
	buf  []byte
	vals []string // header values, three per message

	subject, subjPortal, subjObject, subjKind string // the last subject built
}

// eventType is the Sb-Event-Type of every message the receiver publishes.
var eventType = string((*hubspotv1.HubSpotEvent)(nil).ProtoReflect().Descriptor().FullName())

// newEncoder returns an encoder for n events of bodyLen JSON bytes in all.
func newEncoder(ctx context.Context, producer string, n, bodyLen int) *encoder {
	e := &encoder{ctx: ctx, producer: producer, trace: map[string]string{}}
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(e.trace))
	// An event's protobuf is its raw JSON plus its fields again.
	e.buf = make([]byte, 0, 2*bodyLen+96*n)
	e.vals = make([]string, 0, 3*n)
	return e
}

// fill sets the reused protobuf value to the HubSpotEvent published for ev.
func (e *encoder) fill(portalID, msgID string, ev *Event, echo bool) {
	w := &ev.WebhookEvent
	e.at.Reset()
	ms := int64(w.OccurredAt)
	e.at.Seconds, e.at.Nanos = ms/1000, int32(ms%1000)*1e6
	if e.at.Nanos < 0 { // before 1970: nanos stay non-negative
		e.at.Seconds--
		e.at.Nanos += 1e9
	}
	e.meta.Reset()
	e.meta.EventId, e.meta.PortalId, e.meta.OccurredAt = msgID, portalID, &e.at
	e.meta.Producer, e.meta.CorrelationId = e.producer, msgID
	p := &e.ev
	p.Reset()
	p.Meta = &e.meta
	p.EventId, p.SubscriptionId, p.PortalId, p.AppId = w.EventID, w.SubscriptionID, w.PortalID, w.AppID
	p.OccurredAt = &e.at
	p.SubscriptionType = w.SubscriptionType
	p.AttemptNumber = int32(min(w.AttemptNumber, 1<<31-1))
	p.ObjectId, p.ObjectTypeId = w.ObjectID, w.ObjectTypeID
	p.PropertyName, p.PropertyValue = w.PropertyName, w.PropertyValue
	p.ChangeSource, p.SourceId, p.ChangeFlag = w.ChangeSource, w.SourceID, w.ChangeFlag
	p.PrimaryObjectId, p.MergedObjectIds, p.NewObjectId = w.PrimaryObjectID, w.MergedObjectIDs, w.NewObjectID
	p.AssociationType, p.FromObjectId, p.ToObjectId = w.AssociationType, w.FromObjectID, w.ToObjectID
	p.AssociationRemoved, p.IsPrimaryAssociation = w.AssociationRemoved, w.IsPrimaryAssociation
	p.Echo = echo
	p.RawJson = ev.Raw
}

// message builds the JetStream message for ev: the HubSpotEvent as binary
// protobuf on Subject, with the headers natsx.NewMsg sets.
func (e *encoder) message(portalID string, ev *Event, echo bool) (*nats.Msg, error) {
	id := MsgID(portalID, ev.EventID)
	e.fill(portalID, id, ev, echo)
	start := len(e.buf)
	buf, err := proto.MarshalOptions{}.MarshalAppend(e.buf, &e.ev)
	if err != nil {
		return nil, fmt.Errorf("receiver: marshal %s %s: %w", eventType, id, err)
	}
	e.buf = buf
	// Full slice expressions: nobody can append into a neighbour.
	data := buf[start:len(buf):len(buf)]
	v := len(e.vals)
	e.vals = append(e.vals, id, eventType, natsx.ContentTypeProtobuf)
	h := make(nats.Header, 3+len(e.trace))
	h[natsx.HeaderMsgID] = e.vals[v : v+1 : v+1]
	h[natsx.HeaderEventType] = e.vals[v+1 : v+2 : v+2]
	h[natsx.HeaderContentType] = e.vals[v+2 : v+3 : v+3]
	for k, val := range e.trace {
		h[k] = []string{val}
	}
	return &nats.Msg{Subject: e.subjectFor(portalID, ev), Data: data, Header: h}, nil
}

// subjectFor is Subject(portalID, ev), reusing the last one built: a
// request's events mostly share it.
func (e *encoder) subjectFor(portalID string, ev *Event) string {
	if e.subject == "" || e.subjPortal != portalID || e.subjObject != ev.Object || e.subjKind != ev.Kind {
		e.subject, e.subjPortal, e.subjObject, e.subjKind = Subject(portalID, ev), portalID, ev.Object, ev.Kind
	}
	return e.subject
}
