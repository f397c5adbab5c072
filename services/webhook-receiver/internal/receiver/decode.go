package receiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/signalbridge/signalbridge/libs/hubspot"
	"github.com/signalbridge/signalbridge/libs/natsx"
)

// MaxEvents is the most events HubSpot puts into one webhook request; a
// request with more is refused (400).
const MaxEvents = 100

// Reasons a request body is refused (400), used in responses and as the
// "reason" attribute of the rejection metric.
const (
	ReasonNotJSON       = "not_json"
	ReasonNotArray      = "not_array"
	ReasonNoEvents      = "no_events"
	ReasonTooManyEvents = "too_many_events"
	ReasonInvalidEvent  = "invalid_event"
	ReasonMixedApps     = "mixed_apps"
)

// ErrBadRequest is wrapped by every *DecodeError.
var ErrBadRequest = errors.New("bad webhook request")

// DecodeError says why a body was refused. Reason is one of the Reason*
// constants; the message names the event index and field where there is one.
type DecodeError struct {
	Reason string
	Err    error
}

func (e *DecodeError) Error() string { return e.Err.Error() }

// Unwrap returns the cause and ErrBadRequest.
func (e *DecodeError) Unwrap() []error { return []error{e.Err, ErrBadRequest} }

func badRequest(reason string, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Event is one decoded webhook event with what the receiver derives from it.
type Event struct {
	hubspot.WebhookEvent
	// Raw is the event's JSON exactly as HubSpot sent it.
	Raw json.RawMessage
	// Object and Kind are the subject tokens from subscriptionType
	// ("contact", "propertyChange"), made safe for a NATS subject.
	Object, Kind string
}

// Request is a decoded webhook body: 1 to MaxEvents events of one app.
type Request struct {
	Events []Event
	// AppID is the app every event names.
	AppID int64
}

// Decode parses a webhook body (a JSON array of events) with the hubspot
// package's parser, keeps each event's raw JSON, and checks what the
// receiver relies on: 1 to MaxEvents events, every one of the same app, with
// a subscriptionType that makes a subject. Errors are *DecodeError.
func Decode(body []byte) (*Request, error) {
	events, raws, err := hubspot.ParseWebhookEventsRaw(body)
	if err != nil {
		return nil, classifyParseError(body, err)
	}
	switch {
	case len(events) == 0:
		return nil, badRequest(ReasonNoEvents, "hubspot webhook: the body holds no events")
	case len(events) > MaxEvents:
		return nil, badRequest(ReasonTooManyEvents, "hubspot webhook: %d events, at most %d per request", len(events), MaxEvents)
	}
	req := &Request{Events: make([]Event, len(events)), AppID: events[0].AppID}
	for i, e := range events {
		if e.AppID != req.AppID {
			return nil, badRequest(ReasonMixedApps, "hubspot webhook: events[%d].appId: %d differs from events[0].appId %d; one request carries the events of one app", i, e.AppID, req.AppID)
		}
		object, kind, err := subjectTokens(e.SubscriptionType)
		if err != nil {
			return nil, badRequest(ReasonInvalidEvent, "hubspot webhook: events[%d].subscriptionType: %v", i, err)
		}
		req.Events[i] = Event{WebhookEvent: e, Raw: raws[i], Object: object, Kind: kind}
	}
	return req, nil
}

// classifyParseError tells a body that is not JSON from one that is JSON
// but not an array, and both from an array with a bad event. It runs on the
// error path only.
func classifyParseError(body []byte, err error) *DecodeError {
	switch {
	case !json.Valid(body):
		return &DecodeError{Reason: ReasonNotJSON, Err: err}
	case !strings.HasPrefix(strings.TrimLeft(string(body), " \t\r\n"), "["):
		return &DecodeError{Reason: ReasonNotArray, Err: err}
	default:
		return &DecodeError{Reason: ReasonInvalidEvent, Err: err}
	}
}

// subjectTokens splits "contact.propertyChange" into the subject tokens
// "contact" and "propertyChange". Characters a subject token cannot hold
// become '_' ("line item.creation" → "line_item"); an empty or overlong
// part is an error.
func subjectTokens(subscriptionType string) (object, kind string, err error) {
	o, k, ok := strings.Cut(subscriptionType, ".")
	if !ok || o == "" || k == "" {
		return "", "", fmt.Errorf("%q is not <object>.<event>", subscriptionType)
	}
	object, kind = sanitizeToken(o), sanitizeToken(k)
	if err := natsx.ValidToken(object); err != nil {
		return "", "", fmt.Errorf("object of %q: %w", subscriptionType, err)
	}
	if err := natsx.ValidToken(kind); err != nil {
		return "", "", fmt.Errorf("event of %q: %w", subscriptionType, err)
	}
	return object, kind, nil
}

// sanitizeToken replaces every byte outside [A-Za-z0-9_-] with '_'.
func sanitizeToken(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if !tokenByte(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if !tokenByte(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
