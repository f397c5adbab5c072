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
	"unicode/utf8"
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
//
// Bodies of the usual shape take a single-pass decoder; whatever it does not
// decode exactly as encoding/json would (escaped or case-folded keys, a
// repeated key, a wrong type, invalid JSON, …) goes through encoding/json,
// which also words the error. Both give the same events (a fuzz test checks).
func ParseWebhookEvents(body []byte) ([]WebhookEvent, error) {
	events, _, err := parseWebhookEvents(body, false)
	return events, err
}

// ParseWebhookEventsRaw is ParseWebhookEvents that also returns each event's
// JSON exactly as sent (without the whitespace around it).
func ParseWebhookEventsRaw(body []byte) ([]WebhookEvent, []json.RawMessage, error) {
	return parseWebhookEvents(body, true)
}

func parseWebhookEvents(body []byte, wantRaw bool) ([]WebhookEvent, []json.RawMessage, error) {
	events, raws, ok := scanWebhookEvents(body, wantRaw)
	if !ok {
		return parseWebhookEventsJSON(body)
	}
	for i := range events {
		if err := checkEvent(&events[i]); err != nil {
			return nil, nil, fmt.Errorf("hubspot webhook: events[%d]%w", i, err)
		}
	}
	return events, raws, nil
}

// parseWebhookEventsJSON is ParseWebhookEventsRaw through encoding/json,
// event by event.
func parseWebhookEventsJSON(body []byte) ([]WebhookEvent, []json.RawMessage, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, nil, fmt.Errorf("hubspot webhook: body is a JSON %s, want an array of events", te.Value)
		}
		return nil, nil, fmt.Errorf("hubspot webhook: body is not a JSON array of events: %w", err)
	}
	events := make([]WebhookEvent, len(raws))
	for i, raw := range raws {
		err := decodeEvent(raw, &events[i])
		if err == nil {
			err = checkEvent(&events[i])
		}
		if err != nil {
			return nil, nil, fmt.Errorf("hubspot webhook: events[%d]%w", i, err)
		}
	}
	return events, raws, nil
}

// checkEvent checks the fields every event must have; the error starts with
// the field (".eventId: missing").
func checkEvent(e *WebhookEvent) error {
	switch {
	case e.EventID == 0:
		return errors.New(".eventId: missing")
	case e.SubscriptionType == "":
		return errors.New(".subscriptionType: missing")
	case !strings.Contains(e.SubscriptionType, "."):
		return fmt.Errorf(".subscriptionType: %q is not <object>.<event>", e.SubscriptionType)
	case e.PortalID == 0:
		return errors.New(".portalId: missing")
	case e.OccurredAt <= 0:
		return errors.New(".occurredAt: missing")
	case e.AttemptNumber < 0:
		return fmt.Errorf(".attemptNumber: negative (%d)", e.AttemptNumber)
	case strings.HasSuffix(e.SubscriptionType, ".propertyChange") && e.PropertyName == "":
		return fmt.Errorf(".propertyName: missing on a %s event", e.SubscriptionType)
	}
	return nil
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

// webhookEventKeys are the JSON keys of WebhookEvent, which eventScanner.field
// decodes (a test keeps the two in step with the struct tags).
var webhookEventKeys = []string{
	"eventId", "subscriptionId", "portalId", "appId", "occurredAt", "subscriptionType", "attemptNumber",
	"objectId", "objectTypeId", "propertyName", "propertyValue", "changeSource", "sourceId", "changeFlag",
	"isSensitive", "primaryObjectId", "mergedObjectIds", "newObjectId", "numberOfPropertiesMoved",
	"associationType", "associationTypeId", "associationCategory", "fromObjectId", "fromObjectTypeId",
	"toObjectId", "toObjectTypeId", "associationRemoved", "isPrimaryAssociation",
}

// maxSkipDepth bounds the nesting of unknown values the scanner skips;
// deeper ones go to encoding/json.
const maxSkipDepth = 32

// eventScanner decodes a webhook body in one pass without reflection. It
// handles the shapes HubSpot sends and gives up (ok false) on anything else,
// leaving it to encoding/json: it never accepts a body encoding/json refuses,
// nor decodes one differently.
type eventScanner struct {
	b    []byte
	s    string // b as a string: strings without escapes are slices of it
	i    int
	seen uint32 // the keys of webhookEventKeys met in the current event
}

// scanWebhookEvents decodes body with an eventScanner, and with wantRaw
// returns each event's JSON too (slices of body); false means "ask
// encoding/json".
func scanWebhookEvents(body []byte, wantRaw bool) ([]WebhookEvent, []json.RawMessage, bool) {
	p := eventScanner{b: body}
	p.ws()
	if p.peek() != '[' {
		return nil, nil, false
	}
	p.i++
	// One copy of the body; every plain string field points into it.
	p.s = string(body)
	// Every event is an object: at least as many as events, rarely more.
	n := bytes.Count(body, []byte{'{'})
	events := make([]WebhookEvent, 0, n)
	var raws []json.RawMessage
	if wantRaw {
		raws = make([]json.RawMessage, 0, n)
	}
	p.ws()
	if p.peek() == ']' {
		p.i++
	} else {
	elements:
		for {
			if p.peek() != '{' {
				return nil, nil, false
			}
			start := p.i
			events = append(events, WebhookEvent{})
			if !p.object(&events[len(events)-1]) {
				return nil, nil, false
			}
			if wantRaw {
				raws = append(raws, body[start:p.i:p.i])
			}
			p.ws()
			switch p.next() {
			case ',':
				p.ws()
			case ']':
				break elements
			default:
				return nil, nil, false
			}
		}
	}
	p.ws()
	if p.i != len(p.b) {
		return nil, nil, false
	}
	return events, raws, true
}

// object decodes the object at p.i into e.
func (p *eventScanner) object(e *WebhookEvent) bool {
	p.i++ // '{'
	p.seen = 0
	p.ws()
	if p.peek() == '}' {
		p.i++
		return true
	}
	for {
		if p.peek() != '"' {
			return false
		}
		start, end, plain, ok := p.str()
		if !ok || !plain {
			return false // an escaped or non-ASCII key may still name a field
		}
		p.ws()
		if p.next() != ':' {
			return false
		}
		p.ws()
		if !p.field(e, p.s[start:end]) {
			return false
		}
		p.ws()
		switch p.next() {
		case ',':
			p.ws()
		case '}':
			return true
		default:
			return false
		}
	}
}

// field decodes the value at p.i into e's field named key, or skips it for
// a key that is none of e's.
func (p *eventScanner) field(e *WebhookEvent, key string) bool {
	switch key {
	case "eventId":
		return p.once(0) && p.int64(&e.EventID)
	case "subscriptionId":
		return p.once(1) && p.int64(&e.SubscriptionID)
	case "portalId":
		return p.once(2) && p.int64(&e.PortalID)
	case "appId":
		return p.once(3) && p.int64(&e.AppID)
	case "occurredAt":
		return p.once(4) && p.int64((*int64)(&e.OccurredAt))
	case "subscriptionType":
		return p.once(5) && p.string(&e.SubscriptionType)
	case "attemptNumber":
		return p.once(6) && p.int(&e.AttemptNumber)
	case "objectId":
		return p.once(7) && p.int64(&e.ObjectID)
	case "objectTypeId":
		return p.once(8) && p.string(&e.ObjectTypeID)
	case "propertyName":
		return p.once(9) && p.string(&e.PropertyName)
	case "propertyValue":
		return p.once(10) && p.scalarText(&e.PropertyValue)
	case "changeSource":
		return p.once(11) && p.string(&e.ChangeSource)
	case "sourceId":
		return p.once(12) && p.string(&e.SourceID)
	case "changeFlag":
		return p.once(13) && p.string(&e.ChangeFlag)
	case "isSensitive":
		return p.once(14) && p.bool(&e.IsSensitive)
	case "primaryObjectId":
		return p.once(15) && p.int64(&e.PrimaryObjectID)
	case "mergedObjectIds":
		return p.once(16) && p.int64s(&e.MergedObjectIDs)
	case "newObjectId":
		return p.once(17) && p.int64(&e.NewObjectID)
	case "numberOfPropertiesMoved":
		return p.once(18) && p.int(&e.NumberOfPropertiesMoved)
	case "associationType":
		return p.once(19) && p.string(&e.AssociationType)
	case "associationTypeId":
		return p.once(20) && p.int(&e.AssociationTypeID)
	case "associationCategory":
		return p.once(21) && p.string(&e.AssociationCategory)
	case "fromObjectId":
		return p.once(22) && p.int64(&e.FromObjectID)
	case "fromObjectTypeId":
		return p.once(23) && p.string(&e.FromObjectTypeID)
	case "toObjectId":
		return p.once(24) && p.int64(&e.ToObjectID)
	case "toObjectTypeId":
		return p.once(25) && p.string(&e.ToObjectTypeID)
	case "associationRemoved":
		return p.once(26) && p.bool(&e.AssociationRemoved)
	case "isPrimaryAssociation":
		return p.once(27) && p.bool(&e.IsPrimaryAssociation)
	}
	for _, k := range webhookEventKeys {
		if strings.EqualFold(k, key) {
			return false // encoding/json matches keys case-insensitively
		}
	}
	return p.skip(0)
}

// once marks key number bit as met; a key met twice goes to encoding/json.
func (p *eventScanner) once(bit uint) bool {
	if p.seen&(1<<bit) != 0 {
		return false
	}
	p.seen |= 1 << bit
	return true
}

func (p *eventScanner) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *eventScanner) next() byte {
	c := p.peek()
	p.i++
	return c
}

// ws skips JSON whitespace.
func (p *eventScanner) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// literal consumes word (true, false, null).
func (p *eventScanner) literal(word string) bool {
	if !strings.HasPrefix(p.s[p.i:], word) {
		return false
	}
	p.i += len(word)
	return true
}

// str scans the JSON string at p.i (its opening quote) and returns the
// bounds of its contents; plain is false if it holds escapes or bytes
// outside ASCII. ok is false for an invalid string.
func (p *eventScanner) str() (start, end int, plain, ok bool) {
	b := p.b
	i := p.i + 1
	start, plain = i, true
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			p.i = i + 1
			return start, i, plain, true
		case c < 0x20:
			return 0, 0, false, false
		case c == '\\':
			plain = false
			if i+1 >= len(b) {
				return 0, 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return 0, 0, false, false
				}
				i += 6
			default:
				return 0, 0, false, false
			}
		case c >= utf8.RuneSelf:
			plain = false
			i++
		default:
			i++
		}
	}
	return 0, 0, false, false
}

// stringValue decodes the JSON string at p.i.
func (p *eventScanner) stringValue(dst *string) bool {
	start, end, plain, ok := p.str()
	switch {
	case !ok:
		return false
	case plain || !bytes.ContainsRune(p.b[start:end], '\\') && utf8.Valid(p.b[start:end]):
		*dst = p.s[start:end]
		return true
	default: // escapes or invalid UTF-8: as encoding/json unquotes them
		return json.Unmarshal(p.b[start-1:end+1], dst) == nil
	}
}

// string decodes a string field (null leaves it empty).
func (p *eventScanner) string(dst *string) bool {
	switch p.peek() {
	case '"':
		return p.stringValue(dst)
	case 'n':
		return p.literal("null")
	}
	return false
}

// number scans a JSON number; isInt says it has no fraction or exponent.
func (p *eventScanner) number() (start, end int, isInt, ok bool) {
	b := p.b
	i := p.i
	start = i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0, 0, false, false
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, 0, false, false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, 0, false, false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	p.i = i
	return start, i, isInt, true
}

// int64 decodes an integer field (null leaves it 0).
func (p *eventScanner) int64(dst *int64) bool {
	if p.peek() == 'n' {
		return p.literal("null")
	}
	start, end, isInt, ok := p.number()
	if !ok || !isInt {
		return false
	}
	n, err := strconv.ParseInt(p.s[start:end], 10, 64)
	if err != nil {
		return false
	}
	*dst = n
	return true
}

// int decodes an int field (null leaves it 0).
func (p *eventScanner) int(dst *int) bool {
	var n int64
	if !p.int64(&n) || int64(int(n)) != n {
		return false
	}
	*dst = int(n)
	return true
}

// bool decodes a bool field (null leaves it false).
func (p *eventScanner) bool(dst *bool) bool {
	switch p.peek() {
	case 't':
		*dst = true
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	}
	return false
}

// int64s decodes an array of integers (null leaves it nil).
func (p *eventScanner) int64s(dst *[]int64) bool {
	switch p.peek() {
	case 'n':
		return p.literal("null")
	case '[':
	default:
		return false
	}
	p.i++
	out := []int64{}
	p.ws()
	if p.peek() == ']' {
		p.i++
		*dst = out
		return true
	}
	for {
		var n int64
		if p.peek() == 'n' || !p.int64(&n) { // a null element stays 0 in encoding/json: leave it that
			return false
		}
		out = append(out, n)
		p.ws()
		switch p.next() {
		case ',':
			p.ws()
		case ']':
			*dst = out
			return true
		default:
			return false
		}
	}
}

// scalarText decodes propertyValue: a string as itself, a number or boolean
// as its JSON text, null as "". Objects and arrays are errors.
func (p *eventScanner) scalarText(dst *string) bool {
	switch c := p.peek(); {
	case c == '"':
		return p.stringValue(dst)
	case c == 'n':
		return p.literal("null")
	case c == 't':
		*dst = "true"
		return p.literal("true")
	case c == 'f':
		*dst = "false"
		return p.literal("false")
	case c == '-' || c >= '0' && c <= '9':
		start, end, _, ok := p.number()
		*dst = p.s[start:end]
		return ok
	}
	return false
}

// skip validates and skips the value at p.i.
func (p *eventScanner) skip(depth int) bool {
	switch c := p.peek(); {
	case c == '"':
		_, _, _, ok := p.str()
		return ok
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		_, _, _, ok := p.number()
		return ok
	case depth >= maxSkipDepth:
		return false
	case c == '[':
		p.i++
		p.ws()
		if p.peek() == ']' {
			p.i++
			return true
		}
		for {
			if !p.skip(depth + 1) {
				return false
			}
			p.ws()
			switch p.next() {
			case ',':
				p.ws()
			case ']':
				return true
			default:
				return false
			}
		}
	case c == '{':
		p.i++
		p.ws()
		if p.peek() == '}' {
			p.i++
			return true
		}
		for {
			if p.peek() != '"' {
				return false
			}
			if _, _, _, ok := p.str(); !ok {
				return false
			}
			p.ws()
			if p.next() != ':' {
				return false
			}
			p.ws()
			if !p.skip(depth + 1) {
				return false
			}
			p.ws()
			switch p.next() {
			case ',':
				p.ws()
			case '}':
				return true
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
