package receiver

import (
	"context"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
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

// toProto builds the HubSpotEvent published for ev.
func toProto(portalID, msgID, producer string, ev *Event, echo bool) *hubspotv1.HubSpotEvent {
	e := &ev.WebhookEvent
	occurred := timestamppb.New(e.OccurredAt.Time())
	return &hubspotv1.HubSpotEvent{
		Meta: &eventsv1.EventMeta{
			EventId:       msgID,
			PortalId:      portalID,
			OccurredAt:    occurred,
			Producer:      producer,
			CorrelationId: msgID,
		},
		EventId:              e.EventID,
		SubscriptionId:       e.SubscriptionID,
		PortalId:             e.PortalID,
		AppId:                e.AppID,
		OccurredAt:           occurred,
		SubscriptionType:     e.SubscriptionType,
		AttemptNumber:        int32(min(e.AttemptNumber, 1<<31-1)),
		ObjectId:             e.ObjectID,
		ObjectTypeId:         e.ObjectTypeID,
		PropertyName:         e.PropertyName,
		PropertyValue:        e.PropertyValue,
		ChangeSource:         e.ChangeSource,
		SourceId:             e.SourceID,
		ChangeFlag:           e.ChangeFlag,
		PrimaryObjectId:      e.PrimaryObjectID,
		MergedObjectIds:      e.MergedObjectIDs,
		NewObjectId:          e.NewObjectID,
		AssociationType:      e.AssociationType,
		FromObjectId:         e.FromObjectID,
		ToObjectId:           e.ToObjectID,
		AssociationRemoved:   e.AssociationRemoved,
		IsPrimaryAssociation: e.IsPrimaryAssociation,
		Echo:                 echo,
		RawJson:              ev.Raw,
	}
}

// message builds the JetStream message for ev.
func message(ctx context.Context, portalID, producer string, ev *Event, echo bool) (*nats.Msg, error) {
	id := MsgID(portalID, ev.EventID)
	return natsx.NewMsg(ctx, Subject(portalID, ev), id, toProto(portalID, id, producer, ev, echo))
}
