package receiver

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/events/v1"
	hubspotv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/hubspot/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
)

// want is the HubSpotEvent for ev, built field by field the plain way.
func want(portalID, producer string, ev *Event, echo bool) *hubspotv1.HubSpotEvent {
	e := &ev.WebhookEvent
	id := MsgID(portalID, e.EventID)
	at := timestamppb.New(e.OccurredAt.Time())
	return &hubspotv1.HubSpotEvent{
		Meta:    &eventsv1.EventMeta{EventId: id, PortalId: portalID, OccurredAt: at, Producer: producer, CorrelationId: id},
		EventId: e.EventID, SubscriptionId: e.SubscriptionID, PortalId: e.PortalID, AppId: e.AppID, OccurredAt: at,
		SubscriptionType: e.SubscriptionType, AttemptNumber: int32(e.AttemptNumber), ObjectId: e.ObjectID, ObjectTypeId: e.ObjectTypeID,
		PropertyName: e.PropertyName, PropertyValue: e.PropertyValue, ChangeSource: e.ChangeSource, SourceId: e.SourceID,
		ChangeFlag: e.ChangeFlag, PrimaryObjectId: e.PrimaryObjectID, MergedObjectIds: e.MergedObjectIDs, NewObjectId: e.NewObjectID,
		AssociationType: e.AssociationType, FromObjectId: e.FromObjectID, ToObjectId: e.ToObjectID,
		AssociationRemoved: e.AssociationRemoved, IsPrimaryAssociation: e.IsPrimaryAssociation, Echo: echo, RawJson: ev.Raw,
	}
}

// TestEncoderReusesNothingItHandsOut checks that the messages of one
// request, built with one reused protobuf value and one buffer, each hold
// their own event and headers.
func TestEncoderReusesNothingItHandsOut(t *testing.T) {
	t.Parallel()
	req, err := Decode([]byte(`[` + okEvent + `,
	 {"eventId":3,"portalId":555,"appId":42,"occurredAt":1708986598743,"subscriptionType":"contact.merge","attemptNumber":2,"objectId":10,"primaryObjectId":10,"mergedObjectIds":[11,12],"newObjectId":10},
	 {"eventId":4,"portalId":556,"appId":42,"occurredAt":1708986598001,"subscriptionType":"contact.associationChange","associationType":"CONTACT_TO_COMPANY","fromObjectId":10,"toObjectId":77,"associationRemoved":true,"isPrimaryAssociation":true,"changeSource":"INTEGRATION","sourceId":"42"},
	 {"eventId":5,"portalId":555,"appId":42,"occurredAt":7,"subscriptionType":"company.creation","objectTypeId":"0-2","changeFlag":"CREATED"}]`))
	if err != nil {
		t.Fatal(err)
	}
	enc := newEncoder(context.Background(), "webhook-receiver/test", len(req.Events), 0) // a buffer that must grow
	type built struct {
		portal string
		echo   bool
		data   []byte
		subj   string
		id     string
	}
	var out []built
	for i := range req.Events {
		ev := &req.Events[i]
		portal, echo := "555", i == 2
		if ev.PortalID == 556 {
			portal = "556"
		}
		m, err := enc.message(portal, ev, echo)
		if err != nil {
			t.Fatal(err)
		}
		if cap(m.Data) != len(m.Data) {
			t.Errorf("events[%d]: data has room to grow into its neighbour", i)
		}
		out = append(out, built{portal, echo, m.Data, m.Subject, m.Header.Get(natsx.HeaderMsgID)})
		if got := m.Header.Get(natsx.HeaderEventType); got != "signalbridge.hubspot.v1.HubSpotEvent" {
			t.Errorf("events[%d]: %s = %q", i, natsx.HeaderEventType, got)
		}
		if got := m.Header.Get(natsx.HeaderContentType); got != natsx.ContentTypeProtobuf {
			t.Errorf("events[%d]: %s = %q", i, natsx.HeaderContentType, got)
		}
	}
	for i, b := range out {
		ev := &req.Events[i]
		var got hubspotv1.HubSpotEvent
		if err := proto.Unmarshal(b.data, &got); err != nil {
			t.Fatalf("events[%d]: %v", i, err)
		}
		if w := want(b.portal, "webhook-receiver/test", ev, b.echo); !proto.Equal(&got, w) {
			t.Errorf("events[%d]:\n got %v\nwant %v", i, &got, w)
		}
		if b.subj != Subject(b.portal, ev) || b.id != MsgID(b.portal, ev.EventID) {
			t.Errorf("events[%d]: subject %q id %q", i, b.subj, b.id)
		}
	}
}
