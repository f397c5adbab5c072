package hubspottest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The sandbox keeps its own wire types on purpose: it must not import the
// client package, so that each checks the other against HubSpot's shapes.

// timeLayout is the ISO 8601 form HubSpot uses for createdAt, updatedAt and
// datetime property values: millisecond precision, UTC, "Z" suffix.
const timeLayout = "2006-01-02T15:04:05.000Z"

// formatTime renders t the way HubSpot does in JSON bodies.
func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// formatMillis renders t as epoch milliseconds.
func formatMillis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// errorBody is HubSpot's top-level error JSON (components.schemas.Error plus
// the extra fields of rate-limit responses).
type errorBody struct {
	Status        string              `json:"status"`
	Message       string              `json:"message"`
	CorrelationID string              `json:"correlationId"`
	Category      string              `json:"category,omitempty"`
	SubCategory   string              `json:"subCategory,omitempty"`
	Context       map[string][]string `json:"context,omitempty"`
	Errors        []errorDetail       `json:"errors,omitempty"`
	Links         map[string]string   `json:"links,omitempty"`
	ErrorType     string              `json:"errorType,omitempty"`
	PolicyName    string              `json:"policyName,omitempty"`
	RequestID     string              `json:"requestId,omitempty"`
}

// errorDetail is components.schemas.ErrorDetail.
type errorDetail struct {
	Message string              `json:"message"`
	Code    string              `json:"code,omitempty"`
	In      string              `json:"in,omitempty"`
	Context map[string][]string `json:"context,omitempty"`
}

// standardError is one entry of a 207 response's errors[]
// (components.schemas.StandardError). The spec marks context, errors and
// links as required, so they are always present.
type standardError struct {
	Status   string              `json:"status"`
	Category string              `json:"category"`
	Message  string              `json:"message"`
	Context  map[string][]string `json:"context"`
	Errors   []errorDetail       `json:"errors"`
	Links    map[string]string   `json:"links"`
	ID       string              `json:"id,omitempty"`
}

func newStandardError(category, message string, context map[string][]string, details ...errorDetail) standardError {
	if context == nil {
		context = map[string][]string{}
	}
	if details == nil {
		details = []errorDetail{}
	}
	return standardError{Status: "error", Category: category, Message: message, Context: context, Errors: details, Links: map[string]string{}}
}

// apiError is an error response a handler decided to send.
type apiError struct {
	status int
	body   errorBody
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, e.body.Category, e.body.Message)
}

func newAPIError(status int, category, message string) *apiError {
	return &apiError{status: status, body: errorBody{Status: "error", Message: message, Category: category}}
}

func validationError(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf(format, args...))
}

func notFoundError(format string, args ...any) *apiError {
	return newAPIError(http.StatusNotFound, "OBJECT_NOT_FOUND", fmt.Sprintf(format, args...))
}

func (e *apiError) withContext(key string, values ...string) *apiError {
	if e.body.Context == nil {
		e.body.Context = map[string][]string{}
	}
	e.body.Context[key] = append(e.body.Context[key], values...)
	return e
}

func (e *apiError) withDetails(d ...errorDetail) *apiError {
	e.body.Errors = append(e.body.Errors, d...)
	return e
}

func newCorrelationID() string { return uuid.NewString() }

// writeJSON writes v with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeError writes err as HubSpot's error JSON, filling in the correlation id.
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = newAPIError(http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
	}
	body := ae.body
	if body.CorrelationID == "" {
		body.CorrelationID = newCorrelationID()
	}
	if body.Status == "" {
		body.Status = "error"
	}
	w.Header().Set("X-HubSpot-Correlation-Id", body.CorrelationID)
	writeJSON(w, ae.status, body)
}

// maxBodyBytes bounds JSON request bodies (imports have their own limit).
const maxBodyBytes = 32 << 20

// decodeJSON reads r's body into v and reports malformed JSON the way
// HubSpot's Jackson-based endpoints do ("Invalid input JSON on line L, column C").
func decodeJSON(r *http.Request, v any) *apiError {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		return validationError("Invalid input JSON: could not read request body: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return validationError("Invalid input JSON on line 1, column 1: No content to map due to end-of-input")
	}
	if err := json.Unmarshal(data, v); err != nil {
		line, col := 1, 1
		var offset int64 = -1
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			offset = se.Offset
		case errors.As(err, &te):
			offset = te.Offset
		}
		if offset >= 0 {
			line, col = lineCol(data, offset)
		}
		return validationError("Invalid input JSON on line %d, column %d: %v", line, col, err)
	}
	return nil
}

func lineCol(data []byte, offset int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < offset && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line++
			col = 1
			continue
		}
		col++
	}
	return line, col
}

// flexString accepts a JSON string or number (HubSpot accepts both for ids).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*f = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("expected a string or number, got %s", b)
	}
	*f = flexString(n.String())
	return nil
}

// propertyValues is a "properties" object from a request: HubSpot accepts
// strings, numbers, booleans and null (null clears like "").
type propertyValues map[string]string

func (p *propertyValues) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(propertyValues, len(raw))
	for k, v := range raw {
		v = bytes.TrimSpace(v)
		switch {
		case bytes.Equal(v, []byte("null")):
			out[k] = ""
		case len(v) > 0 && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("property %q: %w", k, err)
			}
			out[k] = s
		case bytes.Equal(v, []byte("true")), bytes.Equal(v, []byte("false")):
			out[k] = string(v)
		case len(v) > 0 && (v[0] == '{' || v[0] == '['):
			return fmt.Errorf("property %q: value must be a string, number or boolean, got %s", k, v)
		default:
			var n json.Number
			if err := json.Unmarshal(v, &n); err != nil {
				return fmt.Errorf("property %q: %w", k, err)
			}
			out[k] = n.String()
		}
	}
	*p = out
	return nil
}

// splitList splits a comma-separated query parameter that may also be repeated
// (?properties=a,b&properties=c).
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// statusRecorder captures the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}
