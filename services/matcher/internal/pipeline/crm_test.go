package pipeline

import (
	"reflect"
	"testing"

	hubspotv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/hubspot/v1"
	"github.com/signalbridge/signalbridge/services/matcher/internal/mirror"
)

func TestTargets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ev   *hubspotv1.HubSpotEvent
		want map[mirror.Object][]string
	}{
		{"property change", &hubspotv1.HubSpotEvent{SubscriptionType: "company.propertyChange", ObjectId: 7, PropertyName: "domain"},
			map[mirror.Object][]string{mirror.Companies: {"7"}}},
		{"creation", &hubspotv1.HubSpotEvent{SubscriptionType: "contact.creation", ObjectId: 8},
			map[mirror.Object][]string{mirror.Contacts: {"8"}}},
		{"deletion", &hubspotv1.HubSpotEvent{SubscriptionType: "deal.deletion", ObjectId: 9},
			map[mirror.Object][]string{mirror.Deals: {"9"}}},
		{"merge: survivor and merged ids, once each", &hubspotv1.HubSpotEvent{SubscriptionType: "company.merge", ObjectId: 10,
			PrimaryObjectId: 10, NewObjectId: 10, MergedObjectIds: []int64{11, 12}},
			map[mirror.Object][]string{mirror.Companies: {"10", "11", "12"}}},
		{"association change: both ends", &hubspotv1.HubSpotEvent{SubscriptionType: "contact.associationChange",
			AssociationType: "CONTACT_TO_COMPANY", FromObjectId: 3, ToObjectId: 4},
			map[mirror.Object][]string{mirror.Contacts: {"3"}, mirror.Companies: {"4"}}},
		{"deal to company association", &hubspotv1.HubSpotEvent{SubscriptionType: "deal.associationChange",
			AssociationType: "DEAL_TO_COMPANY", FromObjectId: 5, ToObjectId: 6},
			map[mirror.Object][]string{mirror.Deals: {"5"}, mirror.Companies: {"6"}}},
		{"association to an object the mirror ignores", &hubspotv1.HubSpotEvent{SubscriptionType: "company.associationChange",
			AssociationType: "COMPANY_TO_TICKET", FromObjectId: 5, ToObjectId: 6},
			map[mirror.Object][]string{mirror.Companies: {"5"}}},
		{"other objects ignored", &hubspotv1.HubSpotEvent{SubscriptionType: "ticket.creation", ObjectId: 1}, map[mirror.Object][]string{}},
		{"no object id", &hubspotv1.HubSpotEvent{SubscriptionType: "company.creation"}, map[mirror.Object][]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Targets(tc.ev); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Targets = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMatchedID(t *testing.T) {
	t.Parallel()
	if got := MatchedID("sig:42:abc"); got != "match:sig:42:abc" {
		t.Fatalf("MatchedID = %q", got)
	}
}
