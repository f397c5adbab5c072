package hubspot_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot"
)

// findShared walks up from the package directory to the first ancestor
// holding shared/<rel>, or returns "" when there is none.
func findShared(t *testing.T, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

type signatureVector struct {
	ID        string  `json:"id"`
	Version   string  `json:"version"`
	Secret    string  `json:"secret"`
	Method    *string `json:"method"`
	URI       *string `json:"uri"`
	Body      string  `json:"body"`
	Timestamp *string `json:"timestamp"`
	Expected  string  `json:"expected_signature"`
}

func loadVectors(t *testing.T) []signatureVector {
	t.Helper()
	dir := findShared(t, "hubspot-vectors")
	if dir == "" {
		t.Skip("shared/hubspot-vectors not found above the package directory")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "webhook-signatures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []signatureVector `json:"vectors"`
		Derived []signatureVector `json:"derived_vectors_not_from_any_sdk"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatalf("webhook-signatures.json: %v", err)
	}
	all := append(file.Vectors, file.Derived...)
	if len(all) == 0 {
		t.Fatal("webhook-signatures.json holds no vectors")
	}
	return all
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestVerifySignature_Vectors(t *testing.T) {
	t.Parallel()
	for _, v := range loadVectors(t) {
		t.Run(v.ID, func(t *testing.T) {
			t.Parallel()
			req := hubspot.SignedRequest{
				Version: v.Version, Signature: v.Expected, Method: deref(v.Method),
				URI: deref(v.URI), Body: []byte(v.Body), Timestamp: deref(v.Timestamp),
			}
			now := time.Now()
			if v.Timestamp != nil {
				ms, err := strconv.ParseInt(*v.Timestamp, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				now = time.UnixMilli(ms).Add(time.Minute) // within the 5-minute window
			}
			if err := hubspot.VerifySignature(req, v.Secret, now); err != nil {
				t.Fatalf("valid vector rejected: %v", err)
			}
			// The same vector through a Verifier with an injected clock.
			ver := hubspot.Verifier{Secret: v.Secret, Now: func() time.Time { return now }}
			if err := ver.Verify(req); err != nil {
				t.Fatalf("Verifier rejected a valid vector: %v", err)
			}
			// Any change to what is signed, or the wrong secret, must fail.
			tampered := []struct {
				name string
				mod  func(r *hubspot.SignedRequest) string
			}{
				{"body", func(r *hubspot.SignedRequest) string { r.Body = append([]byte(" "), r.Body...); return v.Secret }},
				{"secret", func(r *hubspot.SignedRequest) string { return v.Secret + "x" }},
			}
			if v.Version != hubspot.SignatureV1 {
				tampered = append(tampered,
					struct {
						name string
						mod  func(r *hubspot.SignedRequest) string
					}{"method", func(r *hubspot.SignedRequest) string { r.Method = "PUT"; return v.Secret }},
					struct {
						name string
						mod  func(r *hubspot.SignedRequest) string
					}{"uri", func(r *hubspot.SignedRequest) string { r.URI += "?x=1"; return v.Secret }},
				)
			}
			for _, tc := range tampered {
				r := req
				r.Body = []byte(v.Body)
				secret := tc.mod(&r)
				if err := hubspot.VerifySignature(r, secret, now); !errors.Is(err, hubspot.ErrSignatureMismatch) {
					t.Errorf("tampered %s: err = %v, want ErrSignatureMismatch", tc.name, err)
				}
			}
		})
	}
}

func TestVerifySignature_V3Window(t *testing.T) {
	t.Parallel()
	const secret = "client-secret"
	ts := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tsStr := strconv.FormatInt(ts.UnixMilli(), 10)
	uri := "https://hooks.example.com/hubspot?portal=1"
	body := []byte(`[{"eventId":1}]`)
	sig := hubspot.SignV3(secret, http.MethodPost, uri, body, tsStr)
	req := hubspot.SignedRequest{Version: hubspot.SignatureV3, Signature: sig, Method: http.MethodPost, URI: uri, Body: body, Timestamp: tsStr}

	cases := []struct {
		name string
		now  time.Time
		want error
	}{
		{"same instant", ts, nil},
		{"4m59s later", ts.Add(5*time.Minute - time.Second), nil},
		{"exactly 5m later", ts.Add(5 * time.Minute), nil},
		{"5m + 1ms later", ts.Add(5*time.Minute + time.Millisecond), hubspot.ErrSignatureExpired},
		{"an hour later", ts.Add(time.Hour), hubspot.ErrSignatureExpired},
		{"4m in the future", ts.Add(-4 * time.Minute), nil},
		{"6m in the future", ts.Add(-6 * time.Minute), hubspot.ErrSignatureExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := hubspot.VerifySignature(req, secret, tc.now)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("malformed timestamp", func(t *testing.T) {
		t.Parallel()
		r := req
		r.Timestamp = "yesterday"
		if err := hubspot.VerifySignature(r, secret, ts); !errors.Is(err, hubspot.ErrSignatureExpired) {
			t.Fatalf("err = %v, want ErrSignatureExpired", err)
		}
	})
	t.Run("custom MaxAge", func(t *testing.T) {
		t.Parallel()
		v := hubspot.Verifier{Secret: secret, MaxAge: time.Minute, Now: func() time.Time { return ts.Add(2 * time.Minute) }}
		if err := v.Verify(req); !errors.Is(err, hubspot.ErrSignatureExpired) {
			t.Fatalf("err = %v, want ErrSignatureExpired with MaxAge 1m", err)
		}
	})
	t.Run("not base64", func(t *testing.T) {
		t.Parallel()
		r := req
		r.Signature = "%%%"
		if err := hubspot.VerifySignature(r, secret, ts); !errors.Is(err, hubspot.ErrSignatureMismatch) {
			t.Fatalf("err = %v, want ErrSignatureMismatch", err)
		}
	})
	t.Run("missing and unknown version", func(t *testing.T) {
		t.Parallel()
		r := req
		r.Signature = ""
		if err := hubspot.VerifySignature(r, secret, ts); !errors.Is(err, hubspot.ErrSignatureMissing) {
			t.Fatalf("empty signature: %v", err)
		}
		r = req
		r.Version = "v9"
		if err := hubspot.VerifySignature(r, secret, ts); !errors.Is(err, hubspot.ErrSignatureVersion) {
			t.Fatalf("v9: %v", err)
		}
	})
}

func TestDecodeV3URI(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"https://example.com/hook", "https://example.com/hook"},
		// Every escape in HubSpot's table is decoded, in either hex case.
		{"https://example.com/a%3Ab%2Fc%3Fd%40e%21f%24g%27h%28i%29j%2Ak%2Cl%3Bm", "https://example.com/a:b/c?d@e!f$g'h(i)j*k,l;m"},
		{"https://example.com/a%3ab%2fc", "https://example.com/a:b/c"},
		// Other escapes stay as sent.
		{"https://example.com/?q=a%20b%26c%3Dd%25", "https://example.com/?q=a%20b%26c%3Dd%25"},
		{"https://example.com/%E2%82%AC", "https://example.com/%E2%82%AC"},
		// Truncated escapes at the end are left alone.
		{"https://example.com/x%3", "https://example.com/x%3"},
		{"https://example.com/x%", "https://example.com/x%"},
	}
	for _, tc := range cases {
		if got := hubspot.DecodeV3URI(tc.in); got != tc.want {
			t.Errorf("DecodeV3URI(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// A signature computed over the decoded URI verifies against the encoded one.
	const secret = "s"
	ts := time.UnixMilli(1_700_000_000_000)
	tsStr := strconv.FormatInt(ts.UnixMilli(), 10)
	encoded := "https://example.com/hook?email=a%40b.com&r=%2Fx"
	sig := hubspot.SignV3(secret, "POST", "https://example.com/hook?email=a@b.com&r=/x", nil, tsStr)
	err := hubspot.VerifySignature(hubspot.SignedRequest{Version: "v3", Signature: sig, Method: "POST", URI: encoded, Timestamp: tsStr}, secret, ts)
	if err != nil {
		t.Fatalf("signature over the decoded URI: %v", err)
	}
	// A signer that does not decode (HubSpot's SDKs) is accepted too …
	raw := base64.StdEncoding.EncodeToString(hmacSHA256(secret, "POST"+encoded+tsStr))
	if err := hubspot.VerifySignature(hubspot.SignedRequest{Version: "v3", Signature: raw, Method: "POST", URI: encoded, Timestamp: tsStr}, secret, ts); err != nil {
		t.Fatalf("signature over the raw URI: %v", err)
	}
	// … but a different URI is not.
	other := base64.StdEncoding.EncodeToString(hmacSHA256(secret, "POST"+"https://example.com/hook?email=a%40c.com&r=%2Fx"+tsStr))
	if err := hubspot.VerifySignature(hubspot.SignedRequest{Version: "v3", Signature: other, Method: "POST", URI: encoded, Timestamp: tsStr}, secret, ts); !errors.Is(err, hubspot.ErrSignatureMismatch) {
		t.Fatalf("signature over another URI: %v", err)
	}
}

func TestVerifier_VerifyHTTP(t *testing.T) {
	t.Parallel()
	const secret = "app-secret"
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	tsStr := strconv.FormatInt(now.UnixMilli(), 10)
	body := []byte(`[{"eventId":7,"subscriptionId":1,"portalId":2,"appId":3,"occurredAt":1,"subscriptionType":"company.creation","attemptNumber":0,"objectId":9}]`)

	newReq := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://internal:8080/webhooks/hubspot?source=x%40y", strings.NewReader(string(body)))
		r.Host = "internal:8080"
		return r
	}
	t.Run("v3 behind a proxy", func(t *testing.T) {
		t.Parallel()
		r := newReq()
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("X-Forwarded-Host", "hooks.example.com")
		r.Header.Set(hubspot.HeaderRequestTimestamp, tsStr)
		r.Header.Set(hubspot.HeaderSignatureV3, hubspot.SignV3(secret, "POST", "https://hooks.example.com/webhooks/hubspot?source=x@y", body, tsStr))
		v := hubspot.Verifier{Secret: secret, Now: func() time.Time { return now }, TrustForwarded: true}
		if err := v.VerifyHTTP(r, body); err != nil {
			t.Fatalf("VerifyHTTP: %v", err)
		}
		v.TrustForwarded = false // the URI is then http://internal:8080/…: mismatch
		if err := v.VerifyHTTP(r, body); !errors.Is(err, hubspot.ErrSignatureMismatch) {
			t.Fatalf("without TrustForwarded: %v, want ErrSignatureMismatch", err)
		}
	})
	t.Run("v1 header", func(t *testing.T) {
		t.Parallel()
		r := newReq()
		r.Header.Set(hubspot.HeaderSignatureVersion, "v1")
		r.Header.Set(hubspot.HeaderSignature, hex.EncodeToString(hubspot.SignatureV1V2("v1", secret, "", "", body)))
		v := hubspot.Verifier{Secret: secret}
		if err := v.VerifyHTTP(r, body); err != nil {
			t.Fatalf("VerifyHTTP v1: %v", err)
		}
		v.MinVersion = hubspot.SignatureV3
		if err := v.VerifyHTTP(r, body); !errors.Is(err, hubspot.ErrSignatureVersion) {
			t.Fatalf("v1 with MinVersion v3: %v, want ErrSignatureVersion", err)
		}
	})
	t.Run("no signature", func(t *testing.T) {
		t.Parallel()
		v := hubspot.Verifier{Secret: secret}
		if err := v.VerifyHTTP(newReq(), body); !errors.Is(err, hubspot.ErrSignatureMissing) {
			t.Fatalf("err = %v, want ErrSignatureMissing", err)
		}
	})
}

func TestParseWebhookEvents(t *testing.T) {
	t.Parallel()
	body := `[
	 {"eventId":567890123,"subscriptionId":234567,"portalId":12345678,"appId":987654,"occurredAt":1708986598741,
	  "subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":65059681032,"propertyName":"email",
	  "propertyValue":"a@b.com","changeSource":"CRM_UI","sourceId":"userId:45678","isSensitive":false},
	 {"eventId":2,"subscriptionId":3,"portalId":12345678,"appId":987654,"occurredAt":1708986598742,
	  "subscriptionType":"company.creation","attemptNumber":1,"objectId":77,"changeFlag":"CREATED","changeSource":"INTEGRATION","sourceId":"987654"},
	 {"eventId":3,"subscriptionId":4,"portalId":12345678,"appId":987654,"occurredAt":1708986598743,
	  "subscriptionType":"contact.merge","attemptNumber":0,"objectId":10,"primaryObjectId":10,"mergedObjectIds":[11,12],
	  "newObjectId":10,"numberOfPropertiesMoved":4},
	 {"eventId":4,"subscriptionId":5,"portalId":12345678,"appId":987654,"occurredAt":1708986598744,
	  "subscriptionType":"contact.associationChange","attemptNumber":0,"associationType":"CONTACT_TO_COMPANY",
	  "fromObjectId":10,"toObjectId":77,"associationRemoved":true,"isPrimaryAssociation":false},
	 {"eventId":5,"subscriptionId":6,"portalId":12345678,"appId":987654,"occurredAt":1708986598745,
	  "subscriptionType":"object.propertyChange","objectTypeId":"0-2","attemptNumber":0,"objectId":77,
	  "propertyName":"numberofemployees","propertyValue":250}
	]`
	events, err := hubspot.ParseWebhookEvents([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 5 {
		t.Fatalf("got %d events, want 5", len(events))
	}
	e := events[0]
	if e.EventID != 567890123 || e.PortalID != 12345678 || e.ObjectID != 65059681032 || e.PropertyValue != "a@b.com" ||
		e.SourceID != "userId:45678" || e.ObjectType() != "contact" || e.EventKind() != "propertyChange" ||
		!e.OccurredAt.Time().Equal(time.UnixMilli(1708986598741)) {
		t.Errorf("event 0 = %+v", e)
	}
	if events[1].ChangeFlag != "CREATED" || events[1].AttemptNumber != 1 {
		t.Errorf("event 1 = %+v", events[1])
	}
	if m := events[2]; m.PrimaryObjectID != 10 || len(m.MergedObjectIDs) != 2 || m.MergedObjectIDs[1] != 12 || m.NumberOfPropertiesMoved != 4 {
		t.Errorf("merge event = %+v", m)
	}
	if a := events[3]; a.AssociationType != "CONTACT_TO_COMPANY" || a.FromObjectID != 10 || a.ToObjectID != 77 || !a.AssociationRemoved {
		t.Errorf("association event = %+v", a)
	}
	if o := events[4]; o.ObjectTypeID != "0-2" || o.PropertyValue != "250" {
		t.Errorf("object event = %+v (a numeric propertyValue must become its text)", o)
	}

	bad := []struct {
		name, body, want string
	}{
		{"not an array", `{"eventId":1}`, "want an array"},
		{"not json", `[{"eventId":`, "not a JSON array"},
		{"wrong type", `[{"eventId":1,"subscriptionType":"a.b","portalId":1,"occurredAt":1},{"eventId":"two"}]`, "events[1].eventId"},
		{"missing eventId", `[{"subscriptionType":"a.b","portalId":1,"occurredAt":1}]`, "events[0].eventId: missing"},
		{"missing type", `[{"eventId":1,"portalId":1,"occurredAt":1}]`, "events[0].subscriptionType: missing"},
		{"bad type", `[{"eventId":1,"portalId":1,"occurredAt":1,"subscriptionType":"creation"}]`, "events[0].subscriptionType"},
		{"missing portal", `[{"eventId":1,"subscriptionType":"a.b","occurredAt":1}]`, "events[0].portalId: missing"},
		{"missing occurredAt", `[{"eventId":1,"subscriptionType":"a.b","portalId":1}]`, "events[0].occurredAt: missing"},
		{"propertyChange without name", `[{"eventId":1,"subscriptionType":"contact.propertyChange","portalId":1,"occurredAt":1}]`, "events[0].propertyName"},
		{"object value", `[{"eventId":1,"subscriptionType":"a.b","portalId":1,"occurredAt":1,"propertyValue":{"x":1}}]`, "events[0].propertyValue"},
		{"objectId string", `[{"eventId":1,"subscriptionType":"a.b","portalId":1,"occurredAt":1,"objectId":"7"}]`, "events[0].objectId"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := hubspot.ParseWebhookEvents([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if evs, err := hubspot.ParseWebhookEvents([]byte(`[]`)); err != nil || len(evs) != 0 {
		t.Fatalf("empty array: %v %v", evs, err)
	}
}

func hmacSHA256(key, msg string) []byte {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return m.Sum(nil)
}
