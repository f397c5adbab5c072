package hubspot

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestWebhookEventKeysMatchTheStruct keeps the scanner's key list (and so
// its switch, which the fuzz test checks against encoding/json) in step with
// WebhookEvent's JSON tags.
func TestWebhookEventKeysMatchTheStruct(t *testing.T) {
	t.Parallel()
	var tags []string
	typ := reflect.TypeFor[WebhookEvent]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		tags = append(tags, name)
	}
	if !slices.Equal(tags, webhookEventKeys) {
		t.Fatalf("webhookEventKeys = %q\nWebhookEvent's JSON keys = %q", webhookEventKeys, tags)
	}
	if len(webhookEventKeys) > 32 {
		t.Fatalf("%d keys do not fit eventScanner.seen", len(webhookEventKeys))
	}
}

// scannerCases are bodies the scanner decodes itself (true) or hands to
// encoding/json (false).
var scannerCases = []struct {
	body    string
	scanned bool
}{
	{`[]`, true},
	{" \t\r\n[ ] \n", true},
	{`[{}]`, true},
	{`[{"eventId":1,"portalId":2,"occurredAt":3,"subscriptionType":"a.b","propertyName":"x","propertyValue":-1.5e3}]`, true},
	{`[{"eventId":1,"mergedObjectIds":[],"propertyValue":true,"isSensitive":null,"objectTypeId":"0-1","x":{"y":[1,"\u00e9",null]}}]`, true},
	{`[{"eventId":1,"propertyValue":"caf\u00e9 \"quoted\"\n","sourceId":"ünïcode"}]`, true},
	{`[{"eventId":1,"mergedObjectIds":[1, 2 ,3]}]`, true},
	{`[{"eventId":-0}]`, true},
	{`[{"eventId":1,"propertyValue":"\ud800"}]`, true},
	{"[{\"eventId\":1,\"propertyValue\":\"\xff\"}]", true},
	{`[{"EventId":1}]`, false},
	{`[{"event\u0049d":1}]`, false},
	{`[{"eventId":1,"eventId":2}]`, false},
	{`[{"eventId":1.0}]`, false},
	{`[{"eventId":1e2}]`, false},
	{`[{"eventId":"1"}]`, false},
	{`[{"eventId":99999999999999999999}]`, false},
	{`[{"mergedObjectIds":[1,null]}]`, false},
	{`[{"propertyValue":{"x":1}}]`, false},
	{`[{"eventId":1}] x`, false},
	{`[{"eventId":1},]`, false},
	{`[{"eventId":01}]`, false},
	{`[{"x":"\q"}]`, false},
	{`[null]`, false},
	{`[1]`, false},
	{`{"eventId":1}`, false},
	{``, false},
	{`[{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}]`, false},
}

func TestScannerDecodesAsEncodingJSONDoes(t *testing.T) {
	t.Parallel()
	for _, tc := range scannerCases {
		events, raws, ok := scanWebhookEvents([]byte(tc.body), true)
		if ok != tc.scanned {
			t.Errorf("%q: scanned = %v, want %v", tc.body, ok, tc.scanned)
		}
		if ok {
			assertSameAsJSON(t, []byte(tc.body), events, raws)
		}
	}
}

// decodeAllJSON decodes every event of body through encoding/json, without
// the checks of required fields.
func decodeAllJSON(body []byte) ([]WebhookEvent, []json.RawMessage, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, nil, err
	}
	events := make([]WebhookEvent, len(raws))
	for i, raw := range raws {
		if err := decodeEvent(raw, &events[i]); err != nil {
			return nil, nil, fmt.Errorf("events[%d]%w", i, err)
		}
	}
	return events, raws, nil
}

func assertSameAsJSON(t *testing.T, body []byte, scanned []WebhookEvent, raws []json.RawMessage) {
	t.Helper()
	want, wantRaws, err := decodeAllJSON(body)
	if err != nil {
		t.Fatalf("%q: the scanner accepted what encoding/json refuses: %v", body, err)
	}
	if !reflect.DeepEqual(scanned, want) {
		t.Fatalf("%q: scanner decoded\n%#v\nencoding/json decoded\n%#v", body, scanned, want)
	}
	if len(raws) != len(wantRaws) {
		t.Fatalf("%q: %d raw events, encoding/json found %d", body, len(raws), len(wantRaws))
	}
	for i := range raws {
		if string(raws[i]) != string(wantRaws[i]) {
			t.Fatalf("%q: raw event %d is %q, encoding/json found %q", body, i, raws[i], wantRaws[i])
		}
	}
}

// FuzzParseWebhookEvents checks the single-pass scanner against
// encoding/json: whatever the scanner decodes, encoding/json decodes too,
// to the same events. And ParseWebhookEvents never panics.
func FuzzParseWebhookEvents(f *testing.F) {
	for _, tc := range scannerCases {
		f.Add([]byte(tc.body))
	}
	f.Add([]byte(`[{"eventId":567890123,"subscriptionId":234567,"portalId":12345678,"appId":987654,"occurredAt":1708986598741,
	  "subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":65059681032,"propertyName":"email",
	  "propertyValue":"a@b.com","changeSource":"CRM_UI","sourceId":"userId:45678","isSensitive":false},
	 {"eventId":3,"subscriptionId":4,"portalId":12345678,"appId":987654,"occurredAt":1708986598743,
	  "subscriptionType":"contact.merge","attemptNumber":0,"objectId":10,"primaryObjectId":10,"mergedObjectIds":[11,12],
	  "newObjectId":10,"numberOfPropertiesMoved":4},
	 {"eventId":4,"subscriptionId":5,"portalId":12345678,"appId":987654,"occurredAt":1708986598744,
	  "subscriptionType":"contact.associationChange","attemptNumber":0,"associationType":"CONTACT_TO_COMPANY","associationTypeId":1,
	  "associationCategory":"HUBSPOT_DEFINED","fromObjectId":10,"fromObjectTypeId":"0-1","toObjectId":77,"toObjectTypeId":"0-2",
	  "associationRemoved":true,"isPrimaryAssociation":false,"changeFlag":"NEW"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := ParseWebhookEvents(body)
		viaJSON, _, errJSON := parseWebhookEventsJSON(body)
		if (err == nil) != (errJSON == nil) || err != nil && err.Error() != errJSON.Error() {
			t.Fatalf("%q: ParseWebhookEvents error %v, through encoding/json %v", body, err, errJSON)
		}
		if err == nil && !reflect.DeepEqual(events, viaJSON) {
			t.Fatalf("%q: ParseWebhookEvents decoded\n%#v\nthrough encoding/json\n%#v", body, events, viaJSON)
		}
		if scanned, raws, ok := scanWebhookEvents(body, true); ok {
			assertSameAsJSON(t, body, scanned, raws)
		}
	})
}

// webhookBenchBody is a realistic delivery: 100 contact.propertyChange events.
func webhookBenchBody() []byte {
	parts := make([]string, 100)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"eventId":%d,"subscriptionId":1001,"portalId":777,"appId":4242,"occurredAt":1708986598741,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":%d,"propertyName":"jobtitle","propertyValue":"Head of Things %d","changeSource":"CRM_UI","sourceId":"userId:9001"}`, 1000+i, 50000+i, i)
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

func BenchmarkParseWebhookEvents(b *testing.B) {
	body := webhookBenchBody()
	for _, bc := range []struct {
		name  string
		parse func([]byte) ([]WebhookEvent, error)
	}{{"scanner", ParseWebhookEvents}, {"encoding-json", func(b []byte) ([]WebhookEvent, error) {
		events, _, err := parseWebhookEventsJSON(b)
		return events, err
	}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.parse(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
