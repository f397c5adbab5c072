package hubspot

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/signalbridge/signalbridge/libs/hubspot/quota"
)

// ErrDailyLimit is wrapped by every error caused by an exhausted daily quota,
// whether HubSpot answered 429 DAILY or the quota governor refused the call.
// It is the same sentinel as quota.ErrDailyLimit.
var ErrDailyLimit = quota.ErrDailyLimit

// ErrBatchTooLarge is wrapped by the error of a batch call with more inputs
// than HubSpot accepts in one request (MaxBatchSize).
var ErrBatchTooLarge = errors.New("hubspot: too many batch inputs")

// ErrNotFound is wrapped by client-side "no such thing" results (for example
// OwnerByEmail finding nobody). HubSpot's own 404s are *Error values;
// IsNotFound matches both.
var ErrNotFound = errors.New("hubspot: not found")

// Rate-limit policy names of HubSpot 429 responses.
const (
	PolicyTenSecondlyRolling = "TEN_SECONDLY_ROLLING"
	PolicySecondly           = "SECONDLY"
	PolicyDaily              = "DAILY"
)

// Error is a non-2xx HubSpot response. Match it with errors.As.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Method and Path identify the request.
	Method, Path string
	// Category is HubSpot's error category (VALIDATION_ERROR, OBJECT_NOT_FOUND,
	// RATE_LIMITS, CONFLICT, …).
	Category    string
	SubCategory string
	Message     string
	// CorrelationID identifies the request for HubSpot support.
	CorrelationID string
	// PolicyName is set on 429s: TEN_SECONDLY_ROLLING, SECONDLY or DAILY.
	PolicyName string
	// Context holds details keyed by kind, e.g. {"invalidPropertyName": ["x"]}.
	Context map[string][]string
	// Errors are per-field details.
	Errors []ErrorDetail
	// RetryAfter is how long to wait before trying again, when the error is
	// transient (rate limits, 5xx); 0 when retrying cannot help.
	RetryAfter time.Duration
	// Attempts is how many times the request was sent.
	Attempts int
}

// ErrorDetail is one entry of an error's "errors" array.
type ErrorDetail struct {
	Message     string              `json:"message"`
	Code        string              `json:"code,omitempty"`
	In          string              `json:"in,omitempty"`
	SubCategory string              `json:"subCategory,omitempty"`
	Context     map[string][]string `json:"context,omitempty"`
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hubspot: %s %s: %d", e.Method, e.Path, e.StatusCode)
	if e.Category != "" {
		b.WriteString(" " + e.Category)
	}
	if e.PolicyName != "" {
		b.WriteString(" " + e.PolicyName)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	for _, d := range e.Errors {
		if d.In != "" {
			fmt.Fprintf(&b, "; %s: %s", d.In, d.Message)
		}
	}
	if e.CorrelationID != "" {
		fmt.Fprintf(&b, " (correlationId %s)", e.CorrelationID)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	return b.String()
}

// Unwrap returns ErrDailyLimit for 429 DAILY responses.
func (e *Error) Unwrap() error {
	if e.StatusCode == http.StatusTooManyRequests && e.PolicyName == PolicyDaily {
		return ErrDailyLimit
	}
	return nil
}

// errorBody is HubSpot's error JSON: components.schemas.Error plus the
// fields of rate-limit responses.
type errorBody struct {
	Status        string              `json:"status"`
	Message       string              `json:"message"`
	CorrelationID string              `json:"correlationId"`
	Category      string              `json:"category"`
	SubCategory   json.RawMessage     `json:"subCategory"`
	Context       map[string][]string `json:"context"`
	Errors        []ErrorDetail       `json:"errors"`
	ErrorType     string              `json:"errorType"`
	PolicyName    string              `json:"policyName"`
}

// parseError builds an *Error from a response body. Bodies that are not
// HubSpot's JSON keep their text (trimmed) as the message.
func parseError(resp *http.Response, body []byte) *Error {
	e := &Error{StatusCode: resp.StatusCode, Method: resp.Request.Method, Path: resp.Request.URL.Path}
	var b errorBody
	if err := json.Unmarshal(body, &b); err == nil {
		e.Category, e.Message, e.CorrelationID = b.Category, b.Message, b.CorrelationID
		e.SubCategory = rawString(b.SubCategory)
		e.PolicyName, e.Context, e.Errors = b.PolicyName, b.Context, b.Errors
		if e.Category == "" {
			e.Category = b.ErrorType
		}
	} else {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		e.Message = msg
	}
	if e.CorrelationID == "" {
		e.CorrelationID = resp.Header.Get("X-HubSpot-Correlation-Id")
	}
	if e.StatusCode == http.StatusTooManyRequests && e.PolicyName == "" {
		// Search 429s carry no policyName, only "You have reached your secondly limit."
		msg := strings.ToLower(e.Message)
		switch {
		case strings.Contains(msg, "secondly limit") && !strings.Contains(msg, "ten_secondly"):
			e.PolicyName = PolicySecondly
		case strings.Contains(msg, "ten_secondly"):
			e.PolicyName = PolicyTenSecondlyRolling
		case strings.Contains(msg, "daily limit"):
			e.PolicyName = PolicyDaily
		}
	}
	return e
}

// rawString renders a JSON value that is usually a string (StandardError's
// subCategory is typed "object" in the spec) as text.
func rawString(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// IsRateLimited reports whether err is a HubSpot 429 of any policy.
func IsRateLimited(err error) bool { return statusIs(err, http.StatusTooManyRequests) }

// IsNotFound reports whether err is a HubSpot 404 or wraps ErrNotFound.
func IsNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || statusIs(err, http.StatusNotFound)
}

// IsConflict reports whether err is a HubSpot 409 (e.g. a duplicate unique value).
func IsConflict(err error) bool { return statusIs(err, http.StatusConflict) }

// IsValidation reports whether err is a request HubSpot rejected as invalid
// (400 or 422, or category VALIDATION_ERROR): retrying it cannot succeed.
func IsValidation(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnprocessableEntity ||
		e.Category == "VALIDATION_ERROR"
}

func statusIs(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == code
}
