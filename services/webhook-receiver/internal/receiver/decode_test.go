package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/natsx"
)

const okEvent = `{"eventId":101,"subscriptionId":7,"portalId":555,"appId":42,"occurredAt":1708986598741,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":9,"propertyName":"email","propertyValue":"a@b.com","changeSource":"CRM_UI","sourceId":"userId:1","futureField":{"x":1}}`

func events(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"eventId":%d,"portalId":555,"appId":42,"occurredAt":1708986598741,"subscriptionType":"company.creation","objectId":%d}`, i+1, i+1)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func TestDecodeKeepsRawEventsAndSubjectTokens(t *testing.T) {
	t.Parallel()
	body := []byte("[ " + okEvent + " ,\n" + `{"eventId":102,"portalId":556,"appId":42,"occurredAt":1,"subscriptionType":"line item.creation"}` + "]")
	req, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if req.AppID != 42 || len(req.Events) != 2 {
		t.Fatalf("app %d, %d events", req.AppID, len(req.Events))
	}
	e := req.Events[0]
	if string(e.Raw) != okEvent {
		t.Errorf("raw = %s, want the event exactly as sent", e.Raw)
	}
	if e.Object != "contact" || e.Kind != "propertyChange" || e.PropertyValue != "a@b.com" || e.PortalID != 555 {
		t.Errorf("event 0 = %+v", e)
	}
	if got := req.Events[1]; got.Object != "line_item" || got.Kind != "creation" {
		t.Errorf("sanitised tokens %q %q, want line_item creation", got.Object, got.Kind)
	}
}

func TestDecodeRefusesBadBodies(t *testing.T) {
	t.Parallel()
	withoutField := func(field string) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(okEvent), &m); err != nil {
			t.Fatal(err)
		}
		delete(m, field)
		b, _ := json.Marshal(m)
		return "[" + string(b) + "]"
	}
	cases := []struct {
		name, body, reason, mention string
	}{
		{"empty body", ``, ReasonNotJSON, ""},
		{"not json", `hello`, ReasonNotJSON, ""},
		{"truncated array", `[` + okEvent, ReasonNotJSON, ""},
		{"object", `{"eventId":1}`, ReasonNotArray, "object"},
		{"string", `"x"`, ReasonNotArray, ""},
		{"null", `null`, ReasonNoEvents, ""},
		{"empty array", `[]`, ReasonNoEvents, ""},
		{"array of numbers", `[1,2]`, ReasonInvalidEvent, "events[0]"},
		{"too many", events(MaxEvents + 1), ReasonTooManyEvents, "101"},
		{"missing eventId", withoutField("eventId"), ReasonInvalidEvent, "eventId"},
		{"missing portalId", withoutField("portalId"), ReasonInvalidEvent, "portalId"},
		{"missing subscriptionType", withoutField("subscriptionType"), ReasonInvalidEvent, "subscriptionType"},
		{"missing occurredAt", withoutField("occurredAt"), ReasonInvalidEvent, "occurredAt"},
		{"wrong type", `[{"eventId":"x","portalId":1,"occurredAt":1,"subscriptionType":"a.b"}]`, ReasonInvalidEvent, "eventId"},
		{"no event part", `[{"eventId":1,"portalId":1,"occurredAt":1,"subscriptionType":"contact."}]`, ReasonInvalidEvent, "subscriptionType"},
		{"overlong object", `[{"eventId":1,"portalId":1,"occurredAt":1,"subscriptionType":"` + strings.Repeat("x", 70) + `.creation"}]`, ReasonInvalidEvent, "subscriptionType"},
		{"mixed apps", "[" + okEvent + `,{"eventId":2,"portalId":555,"appId":43,"occurredAt":1,"subscriptionType":"contact.creation"}]`, ReasonMixedApps, "events[1].appId"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode([]byte(tc.body))
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrBadRequest) {
				t.Fatalf("err = %v, want a *DecodeError", err)
			}
			if de.Reason != tc.reason {
				t.Fatalf("reason %q, want %q (%v)", de.Reason, tc.reason, err)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
}

func TestDecodeAcceptsExactlyMaxEvents(t *testing.T) {
	t.Parallel()
	req, err := Decode([]byte(events(MaxEvents)))
	if err != nil || len(req.Events) != MaxEvents {
		t.Fatalf("%d events: %v", MaxEvents, err)
	}
}

func TestIsEcho(t *testing.T) {
	t.Parallel()
	cases := []struct {
		source, id string
		app        int64
		want       bool
	}{
		{"INTEGRATION", "42", 42, true},
		{"API", "42", 42, true},
		{"integration", "appId:42", 42, true},
		{"INTEGRATION", "43", 42, false},
		{"INTEGRATION", "userId:42", 42, false},
		{"CRM_UI", "42", 42, false},
		{"IMPORT", "42", 42, false},
		{"INTEGRATION", "", 0, false},
		{"INTEGRATION", "0", 0, false},
		{"INTEGRATION", "420", 42, false},
	}
	for _, tc := range cases {
		if got := IsEcho(tc.source, tc.id, tc.app); got != tc.want {
			t.Errorf("IsEcho(%q, %q, %d) = %v, want %v", tc.source, tc.id, tc.app, got, tc.want)
		}
	}
}

// FuzzParseRequest feeds arbitrary bodies to Decode. It must never panic;
// what it accepts must be 1..MaxEvents events of one app, each with the
// required fields, a raw form that parses back to the same event, and a
// subject and msg id that are valid for JetStream.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("[" + okEvent + "]"))
	f.Add([]byte(events(3)))
	f.Add([]byte(`[{"eventId":1,"portalId":2,"appId":3,"occurredAt":4,"subscriptionType":"deal.associationChange","associationType":"DEAL_TO_COMPANY","fromObjectId":1,"toObjectId":2,"associationRemoved":true}]`))
	f.Add([]byte(`[{"eventId":1,"portalId":2,"appId":3,"occurredAt":4,"subscriptionType":"contact.merge","mergedObjectIds":[1,2],"newObjectId":3}]`))
	f.Add([]byte(`[{"eventId":1,"portalId":-2,"occurredAt":4,"subscriptionType":"a b.c*d","propertyName":"x","propertyValue":true}]`))
	f.Add([]byte(`{"eventId":1}`))
	f.Add([]byte(`[`))
	f.Add([]byte(`[null]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := Decode(body)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason == "" || err.Error() == "" {
				t.Fatalf("error without a reason: %#v", err)
			}
			return
		}
		if n := len(req.Events); n == 0 || n > MaxEvents {
			t.Fatalf("accepted %d events", n)
		}
		for i := range req.Events {
			e := &req.Events[i]
			if e.EventID == 0 || e.PortalID == 0 || e.OccurredAt <= 0 || e.AppID != req.AppID {
				t.Fatalf("events[%d] accepted without required fields: %+v", i, e.WebhookEvent)
			}
			back, err := hubspot.ParseWebhookEvents(append(append([]byte("["), e.Raw...), ']'))
			if err != nil || len(back) != 1 || !reflect.DeepEqual(back[0], e.WebhookEvent) {
				t.Fatalf("events[%d] raw %q does not parse back: %v", i, e.Raw, err)
			}
			portal := fmt.Sprint(e.PortalID)
			subject := Subject(portal, e)
			if strings.Count(subject, ".") != 4 || strings.ContainsAny(subject, " *>\t\r\n") {
				t.Fatalf("events[%d]: bad subject %q", i, subject)
			}
			for _, tok := range []string{e.Object, e.Kind} {
				if err := natsx.ValidToken(tok); err != nil {
					t.Fatalf("events[%d]: %v", i, err)
				}
			}
			if id := MsgID(portal, e.EventID); !bytes.HasPrefix([]byte(id), []byte("hs:")) {
				t.Fatalf("msg id %q", id)
			}
		}
	})
}
