package hubspot

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook signature headers.
const (
	HeaderSignature        = "X-HubSpot-Signature"
	HeaderSignatureVersion = "X-HubSpot-Signature-Version"
	HeaderSignatureV3      = "X-HubSpot-Signature-v3"
	HeaderRequestTimestamp = "X-HubSpot-Request-Timestamp"
)

// Signature versions.
const (
	SignatureV1 = "v1" // hex(sha256(secret + body))
	SignatureV2 = "v2" // hex(sha256(secret + method + uri + body))
	SignatureV3 = "v3" // base64(hmac-sha256(secret, method + uri + body + timestamp))
)

// DefaultMaxSignatureAge is how old (or how far in the future) a v3
// timestamp may be.
const DefaultMaxSignatureAge = 5 * time.Minute

// Signature verification errors; match with errors.Is.
var (
	ErrSignatureMissing  = errors.New("hubspot webhook: signature missing")
	ErrSignatureMismatch = errors.New("hubspot webhook: signature mismatch")
	ErrSignatureExpired  = errors.New("hubspot webhook: timestamp outside the allowed window")
	ErrSignatureVersion  = errors.New("hubspot webhook: unsupported signature version")
)

// SignedRequest is what a webhook signature covers.
type SignedRequest struct {
	// Version is SignatureV1, SignatureV2 or SignatureV3.
	Version string
	// Signature is the header value (hex for v1/v2, base64 for v3).
	Signature string
	// Method is the HTTP method (v2, v3).
	Method string
	// URI is the full URL HubSpot called, https://host/path?query (v2, v3).
	URI string
	// Body is the raw request body.
	Body []byte
	// Timestamp is X-HubSpot-Request-Timestamp, epoch milliseconds (v3).
	Timestamp string
}

// VerifySignature checks a webhook signature with the app's client secret
// and, for v3, that the timestamp is within DefaultMaxSignatureAge of now.
// A v3 signature is accepted over the URI with HubSpot's documented escapes
// decoded (DecodeV3URI) or, as HubSpot's SDKs compute it, over the URI as
// given; v2 signs the URI exactly as given.
func VerifySignature(r SignedRequest, secret string, now time.Time) error {
	return verify(r, secret, now, DefaultMaxSignatureAge)
}

// Verifier verifies webhook requests with an injectable clock.
type Verifier struct {
	// Secret is the app's client secret.
	Secret string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MaxAge bounds |now - timestamp| for v3; default DefaultMaxSignatureAge.
	MaxAge time.Duration
	// MinVersion rejects older signature versions; "" accepts v1, v2 and v3.
	// Webhooks-API deliveries are signed v1 and v3, so prefer v3 when the
	// header is present (SignedRequestFromHTTP does).
	MinVersion string
	// TrustForwarded rebuilds the URI's scheme and host from
	// X-Forwarded-Proto and X-Forwarded-Host (behind a trusted proxy).
	TrustForwarded bool
}

// Verify checks a signed request.
func (v *Verifier) Verify(r SignedRequest) error {
	if v.Secret == "" {
		return errors.New("hubspot webhook: verifier has no secret")
	}
	if v.MinVersion != "" && r.Version < v.MinVersion {
		return fmt.Errorf("%w: %s below the minimum %s", ErrSignatureVersion, r.Version, v.MinVersion)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	maxAge := v.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultMaxSignatureAge
	}
	return verify(r, v.Secret, now(), maxAge)
}

// VerifyHTTP checks an incoming request whose body was already read.
func (v *Verifier) VerifyHTTP(r *http.Request, body []byte) error {
	sr, err := SignedRequestFromHTTP(r, body, v.TrustForwarded)
	if err != nil {
		return err
	}
	return v.Verify(sr)
}

// SignedRequestFromHTTP extracts the signed parts of an incoming request,
// preferring the v3 signature when present. The URI is rebuilt as
// scheme://host/path?query; with trustForwarded the scheme and host come
// from X-Forwarded-Proto / X-Forwarded-Host.
func SignedRequestFromHTTP(r *http.Request, body []byte, trustForwarded bool) (SignedRequest, error) {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if trustForwarded {
		if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p != "" {
			scheme = p
		}
		if h := firstValue(r.Header.Get("X-Forwarded-Host")); h != "" {
			host = h
		}
	}
	sr := SignedRequest{Method: r.Method, URI: scheme + "://" + host + r.URL.RequestURI(), Body: body}
	if sig := r.Header.Get(HeaderSignatureV3); sig != "" {
		sr.Version, sr.Signature, sr.Timestamp = SignatureV3, sig, r.Header.Get(HeaderRequestTimestamp)
		return sr, nil
	}
	sig := r.Header.Get(HeaderSignature)
	if sig == "" {
		return sr, ErrSignatureMissing
	}
	sr.Signature = sig
	switch v := strings.ToLower(r.Header.Get(HeaderSignatureVersion)); v {
	case "", SignatureV1:
		sr.Version = SignatureV1
	case SignatureV2:
		sr.Version = SignatureV2
	default:
		return sr, fmt.Errorf("%w: %s %q", ErrSignatureVersion, HeaderSignatureVersion, v)
	}
	return sr, nil
}

func firstValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

func verify(r SignedRequest, secret string, now time.Time, maxAge time.Duration) error {
	if r.Signature == "" {
		return ErrSignatureMissing
	}
	var want, got []byte
	var err error
	switch r.Version {
	case SignatureV1, SignatureV2:
		want = SignatureV1V2(r.Version, secret, r.Method, r.URI, r.Body)
		if got, err = hex.DecodeString(strings.TrimSpace(r.Signature)); err != nil {
			return fmt.Errorf("%w: %s signature is not hex", ErrSignatureMismatch, r.Version)
		}
	case SignatureV3:
		ms, err := strconv.ParseInt(strings.TrimSpace(r.Timestamp), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: %s %q is not epoch milliseconds", ErrSignatureExpired, HeaderRequestTimestamp, r.Timestamp)
		}
		if age := now.Sub(time.UnixMilli(ms)); age > maxAge || age < -maxAge {
			return fmt.Errorf("%w: timestamp %d is %s from now (max %s)", ErrSignatureExpired, ms, age.Round(time.Millisecond), maxAge)
		}
		want = SignatureV3Bytes(secret, r.Method, r.URI, r.Body, r.Timestamp)
		if got, err = base64.StdEncoding.DecodeString(strings.TrimSpace(r.Signature)); err != nil {
			return fmt.Errorf("%w: v3 signature is not base64", ErrSignatureMismatch)
		}
		if !hmac.Equal(want, got) && DecodeV3URI(r.URI) != r.URI {
			// HubSpot's docs decode some escapes before signing, its SDKs
			// sign the URI as given: accept a signature over either form.
			want = signV3Raw(secret, r.Method, r.URI, r.Body, r.Timestamp)
		}
	default:
		return fmt.Errorf("%w: %q", ErrSignatureVersion, r.Version)
	}
	if !hmac.Equal(want, got) {
		return ErrSignatureMismatch
	}
	return nil
}

// SignatureV1V2 computes a v1 (secret + body) or v2 (secret + method + uri +
// body) signature digest; hex-encode it to compare with the header.
func SignatureV1V2(version, secret, method, uri string, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(secret))
	if version == SignatureV2 {
		h.Write([]byte(method))
		h.Write([]byte(uri))
	}
	h.Write(body)
	return h.Sum(nil)
}

// SignatureV3Bytes computes the v3 HMAC-SHA256 of method + uri + body +
// timestamp, after decoding the URI as HubSpot does (DecodeV3URI);
// base64-encode it to compare with the header.
func SignatureV3Bytes(secret, method, uri string, body []byte, timestamp string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(method))
	m.Write([]byte(DecodeV3URI(uri)))
	m.Write(body)
	m.Write([]byte(timestamp))
	return m.Sum(nil)
}

func signV3Raw(secret, method, uri string, body []byte, timestamp string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(method))
	m.Write([]byte(uri))
	m.Write(body)
	m.Write([]byte(timestamp))
	return m.Sum(nil)
}

// SignV3 returns the X-HubSpot-Signature-v3 header value for a request.
func SignV3(secret, method, uri string, body []byte, timestamp string) string {
	return base64.StdEncoding.EncodeToString(SignatureV3Bytes(secret, method, uri, body, timestamp))
}

// v3Decoded are the percent-escapes HubSpot decodes in the URI before
// signing (validating-requests docs); every other escape stays as sent.
var v3Decoded = map[string]byte{
	"3A": ':', "2F": '/', "3F": '?', "40": '@', "21": '!', "24": '$',
	"27": '\'', "28": '(', "29": ')', "2A": '*', "2C": ',', "3B": ';',
}

// DecodeV3URI decodes only %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B
// (either hex case) in uri.
func DecodeV3URI(uri string) string {
	if !strings.Contains(uri, "%") {
		return uri
	}
	var b strings.Builder
	for i := 0; i < len(uri); i++ {
		if uri[i] == '%' && i+2 < len(uri) {
			if c, ok := v3Decoded[strings.ToUpper(uri[i+1:i+3])]; ok {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(uri[i])
	}
	return b.String()
}

// EpochMillis is a timestamp in epoch milliseconds, as in webhook payloads.
type EpochMillis int64

// Time converts it to a time.Time.
func (m EpochMillis) Time() time.Time { return time.UnixMilli(int64(m)) }

// WebhookEvent is one event of a webhook delivery (a JSON array of events,
// at most 100 per request).
type WebhookEvent struct {
	EventID          int64       `json:"eventId"`
	SubscriptionID   int64       `json:"subscriptionId"`
	PortalID         int64       `json:"portalId"`
	AppID            int64       `json:"appId"`
	OccurredAt       EpochMillis `json:"occurredAt"`
	SubscriptionType string      `json:"subscriptionType"`
	// AttemptNumber > 0 marks a redelivery: the event may be a duplicate.
	AttemptNumber int   `json:"attemptNumber"`
	ObjectID      int64 `json:"objectId,omitempty"`
	// ObjectTypeID is set on generic object.* events ("0-1", "2-123…").
	ObjectTypeID  string `json:"objectTypeId,omitempty"`
	PropertyName  string `json:"propertyName,omitempty"`
	PropertyValue string `json:"propertyValue,omitempty"`
	// ChangeSource (CRM_UI, INTEGRATION, IMPORT, API, …) and SourceID
	// ("userId:123", an app id) identify who made the change; use them to
	// drop echoes of our own writes.
	ChangeSource string `json:"changeSource,omitempty"`
	SourceID     string `json:"sourceId,omitempty"`
	// ChangeFlag is set on creation events (NEW / CREATED).
	ChangeFlag  string `json:"changeFlag,omitempty"`
	IsSensitive bool   `json:"isSensitive,omitempty"`

	// Merge events.
	PrimaryObjectID         int64   `json:"primaryObjectId,omitempty"`
	MergedObjectIDs         []int64 `json:"mergedObjectIds,omitempty"`
	NewObjectID             int64   `json:"newObjectId,omitempty"`
	NumberOfPropertiesMoved int     `json:"numberOfPropertiesMoved,omitempty"`

	// Association change events.
	AssociationType      string `json:"associationType,omitempty"`
	AssociationTypeID    int    `json:"associationTypeId,omitempty"`
	AssociationCategory  string `json:"associationCategory,omitempty"`
	FromObjectID         int64  `json:"fromObjectId,omitempty"`
	FromObjectTypeID     string `json:"fromObjectTypeId,omitempty"`
	ToObjectID           int64  `json:"toObjectId,omitempty"`
	ToObjectTypeID       string `json:"toObjectTypeId,omitempty"`
	AssociationRemoved   bool   `json:"associationRemoved,omitempty"`
	IsPrimaryAssociation bool   `json:"isPrimaryAssociation,omitempty"`
}

// ObjectType returns the part of SubscriptionType before the dot
// ("contact" for "contact.propertyChange").
func (e WebhookEvent) ObjectType() string {
	t, _, _ := strings.Cut(e.SubscriptionType, ".")
	return t
}

// EventKind returns the part of SubscriptionType after the dot
// ("propertyChange" for "contact.propertyChange").
func (e WebhookEvent) EventKind() string {
	_, k, _ := strings.Cut(e.SubscriptionType, ".")
	return k
}

// ParseWebhookEvents decodes a webhook body (a JSON array of events). Errors
// name the event index and the field, e.g. `events[2].objectId: …`.
func ParseWebhookEvents(body []byte) ([]WebhookEvent, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("hubspot webhook: body is a JSON %s, want an array of events", te.Value)
		}
		return nil, fmt.Errorf("hubspot webhook: body is not a JSON array of events: %w", err)
	}
	events := make([]WebhookEvent, len(raws))
	for i, raw := range raws {
		where := fmt.Sprintf("hubspot webhook: events[%d]", i)
		if err := decodeEvent(raw, &events[i]); err != nil {
			return nil, fmt.Errorf("%s%w", where, err)
		}
		e := &events[i]
		switch {
		case e.EventID == 0:
			return nil, fmt.Errorf("%s.eventId: missing", where)
		case e.SubscriptionType == "":
			return nil, fmt.Errorf("%s.subscriptionType: missing", where)
		case !strings.Contains(e.SubscriptionType, "."):
			return nil, fmt.Errorf("%s.subscriptionType: %q is not <object>.<event>", where, e.SubscriptionType)
		case e.PortalID == 0:
			return nil, fmt.Errorf("%s.portalId: missing", where)
		case e.OccurredAt <= 0:
			return nil, fmt.Errorf("%s.occurredAt: missing", where)
		case e.AttemptNumber < 0:
			return nil, fmt.Errorf("%s.attemptNumber: negative (%d)", where, e.AttemptNumber)
		case strings.HasSuffix(e.SubscriptionType, ".propertyChange") && e.PropertyName == "":
			return nil, fmt.Errorf("%s.propertyName: missing on a %s event", where, e.SubscriptionType)
		}
	}
	return events, nil
}

// decodeEvent decodes one event, accepting a propertyValue of any JSON
// scalar and reporting type errors by field (".objectId: …").
func decodeEvent(raw json.RawMessage, e *WebhookEvent) error {
	type plain WebhookEvent
	var wire struct {
		*plain
		PropertyValue json.RawMessage `json:"propertyValue"`
	}
	wire.plain = (*plain)(e)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&wire); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			field := strings.TrimPrefix(te.Field, "plain.") // the embedded alias type
			return fmt.Errorf(".%s: got a JSON %s, want %s", field, te.Value, te.Type)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf(": invalid JSON at offset %d: %w", se.Offset, err)
		}
		return fmt.Errorf(": %w", err)
	}
	if v := bytes.TrimSpace(wire.PropertyValue); len(v) > 0 && string(v) != "null" {
		if v[0] == '"' {
			if err := json.Unmarshal(v, &e.PropertyValue); err != nil {
				return fmt.Errorf(".propertyValue: %w", err)
			}
		} else if v[0] == '{' || v[0] == '[' {
			return fmt.Errorf(".propertyValue: got %s, want a string, number or boolean", v)
		} else {
			e.PropertyValue = string(v)
		}
	}
	return nil
}
