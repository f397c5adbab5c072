package receiver

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/signalbridge/signalbridge/libs/hubspot"
)

// benchBody is a realistic delivery: 100 contact.propertyChange events.
func benchBody() []byte {
	parts := make([]string, MaxEvents)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"eventId":%d,"subscriptionId":1001,"portalId":777,"appId":4242,"occurredAt":1708986598741,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":%d,"propertyName":"jobtitle","propertyValue":"Head of Things %d","changeSource":"CRM_UI","sourceId":"userId:9001"}`, 1000+i, 50000+i, i)
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

func BenchmarkParseWebhookEvents(b *testing.B) {
	body := benchBody()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := hubspot.ParseWebhookEvents(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	body := benchBody()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMessages(b *testing.B) {
	req, err := Decode(benchBody())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	n := len(benchBody())
	b.ReportAllocs()
	for b.Loop() {
		enc := newEncoder(ctx, "webhook-receiver/bench", len(req.Events), n)
		for i := range req.Events {
			if _, err := enc.message("777", &req.Events[i], false); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkVerifyV3(b *testing.B) {
	body := benchBody()
	sr := hubspot.SignedRequest{Version: hubspot.SignatureV3, Method: "POST", URI: "https://hooks.example.com/webhooks/hubspot", Body: body, Timestamp: "1708986598741"}
	sr.Signature = hubspot.SignV3("secret", sr.Method, sr.URI, body, sr.Timestamp)
	v := hubspot.Verifier{Secret: "secret", MaxAge: 1 << 62}
	for b.Loop() {
		if err := v.Verify(sr); err != nil {
			b.Fatal(err)
		}
	}
}
