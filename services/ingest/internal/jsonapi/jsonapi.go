// Package jsonapi is the JSON wire format of ingest, shared by the HTTP API and the NATS request
// endpoint: request decoding with per-item errors, and the response body.
package jsonapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	scoresv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scores/v1"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
	"github.com/signalbridge/signalbridge/services/ingest/internal/intake"
)

// ErrMalformed wraps every error that makes a whole request unreadable.
var ErrMalformed = errors.New("malformed request body")

// Signal is one signal as JSON.
type Signal struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Account    *Account          `json:"account"`
	Visitor    *Visitor          `json:"visitor"`
	Strength   string            `json:"strength"`
	OccurredAt json.RawMessage   `json:"occurred_at"`
	Source     string            `json:"source"`
	Attributes map[string]string `json:"attributes"`
}

// Account is the account of a signal.
type Account struct {
	Domain     string   `json:"domain"`
	Aliases    []string `json:"aliases"`
	Name       string   `json:"name"`
	ExternalID string   `json:"external_id"`
	Segments   []string `json:"segments"`
}

// Visitor is the person behind a signal.
type Visitor struct {
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	JobTitle  string `json:"job_title"`
}

// Score is one account score as JSON.
type Score struct {
	Domain         string          `json:"domain"`
	Aliases        []string        `json:"aliases"`
	IntentScore    *float64        `json:"intent_score"`
	IntentStrength string          `json:"intent_strength"`
	IntentTrend    string          `json:"intent_trend"`
	IcpFitScore    *float64        `json:"icp_fit_score"`
	IcpFitGrade    string          `json:"icp_fit_grade"`
	ScoredAt       json.RawMessage `json:"scored_at"`
	ExternalID     string          `json:"external_id"`
}

// Response is the body of a successful (or partly successful) request.
type Response struct {
	intake.Counts
	Results []Result `json:"results"`
}

// Result is one item's outcome as JSON.
type Result struct {
	Index  int                 `json:"index"`
	ID     string              `json:"id,omitempty"`
	Status string              `json:"status"`
	Errors []intake.FieldError `json:"errors,omitempty"`
}

// ErrorBody is the body of a refused request.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// NewResponse builds the response body.
func NewResponse(results []intake.Result, c intake.Counts) Response {
	out := Response{Counts: c, Results: make([]Result, len(results))}
	for i, r := range results {
		out.Results[i] = Result{Index: r.Index, ID: r.ID, Status: r.Status.String(), Errors: r.Errors}
	}
	return out
}

// DecodeSignals reads {"signals": [...]} into items. Each item is decoded on its own, so a
// malformed item becomes that item's error rather than failing the request.
func DecodeSignals(r io.Reader) ([]intake.SignalItem, error) {
	raw, err := decodeEnvelope(r, "signals")
	if err != nil {
		return nil, err
	}
	items := make([]intake.SignalItem, len(raw))
	for i, m := range raw {
		var s Signal
		if errs := decodeItem(m, &s); len(errs) > 0 {
			items[i] = intake.SignalItem{Signal: &signalsv1.Signal{}, Errors: errs}
			continue
		}
		items[i] = s.toProto()
	}
	return items, nil
}

// DecodeScores reads {"scores": [...]} into items.
func DecodeScores(r io.Reader) ([]intake.ScoreItem, error) {
	raw, err := decodeEnvelope(r, "scores")
	if err != nil {
		return nil, err
	}
	items := make([]intake.ScoreItem, len(raw))
	for i, m := range raw {
		var s Score
		if errs := decodeItem(m, &s); len(errs) > 0 {
			items[i] = intake.ScoreItem{Score: &scoresv1.AccountScore{}, Errors: errs}
			continue
		}
		items[i] = s.toProto()
	}
	return items, nil
}

func decodeEnvelope(r io.Reader, key string) ([]json.RawMessage, error) {
	var env map[string]json.RawMessage
	dec := json.NewDecoder(r)
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, describeJSONError(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: unexpected data after the JSON object", ErrMalformed)
	}
	for k := range env {
		if k != key {
			return nil, fmt.Errorf("%w: unknown field %q (expected {%q: [...]})", ErrMalformed, k, key)
		}
	}
	list, ok := env[key]
	if !ok {
		return nil, fmt.Errorf("%w: missing field %q (expected {%q: [...]})", ErrMalformed, key, key)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(list, &items); err != nil {
		return nil, fmt.Errorf("%w: %q must be an array: %v", ErrMalformed, key, describeJSONError(err))
	}
	return items, nil
}

func decodeItem(m json.RawMessage, dst any) []intake.FieldError {
	dec := json.NewDecoder(bytes.NewReader(m))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		field := ""
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field = te.Field
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return []intake.FieldError{{Field: strings.Trim(f, `"`), Message: "unknown field"}}
		}
		return []intake.FieldError{{Field: field, Message: describeJSONError(err)}}
	}
	return nil
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("expected %s, got JSON %s", te.Type, te.Value)
	}
	if errors.Is(err, io.EOF) {
		return "empty body"
	}
	return err.Error()
}

func (s Signal) toProto() intake.SignalItem {
	var errs []intake.FieldError
	p := &signalsv1.Signal{
		Id:         s.ID,
		Type:       s.Type,
		Source:     s.Source,
		Attributes: s.Attributes,
	}
	if a := s.Account; a != nil {
		p.Account = &signalsv1.Account{Domain: a.Domain, Aliases: a.Aliases, Name: a.Name, ExternalId: a.ExternalID, Segments: a.Segments}
	}
	if v := s.Visitor; v != nil {
		p.Visitor = &signalsv1.Visitor{Email: v.Email, FirstName: v.FirstName, LastName: v.LastName, JobTitle: v.JobTitle}
	}
	if st, ok := parseEnum(s.Strength, "STRENGTH_", signalsv1.Strength_value); ok {
		p.Strength = signalsv1.Strength(st)
	} else {
		errs = append(errs, intake.FieldError{Field: "strength", Message: fmt.Sprintf("%q is not one of low, medium, high, very_high", s.Strength)})
	}
	ts, err := parseTime(s.OccurredAt)
	if err != nil {
		errs = append(errs, intake.FieldError{Field: "occurred_at", Message: err.Error()})
	}
	p.OccurredAt = ts
	return intake.SignalItem{Signal: p, Errors: errs}
}

func (s Score) toProto() intake.ScoreItem {
	var errs []intake.FieldError
	p := &scoresv1.AccountScore{Domain: s.Domain, Aliases: s.Aliases, ExternalId: s.ExternalID}
	if s.IntentScore == nil {
		errs = append(errs, intake.FieldError{Field: "intent_score", Message: "required"})
	} else {
		p.IntentScore = *s.IntentScore
	}
	if s.IcpFitScore != nil {
		p.IcpFitScore = *s.IcpFitScore
	}
	if v, ok := parseEnum(s.IntentStrength, "INTENT_STRENGTH_", scoresv1.IntentStrength_value); ok {
		p.IntentStrength = scoresv1.IntentStrength(v)
	} else {
		errs = append(errs, intake.FieldError{Field: "intent_strength", Message: fmt.Sprintf("%q is not one of none, low, medium, high, very_high", s.IntentStrength)})
	}
	if v, ok := parseEnum(s.IntentTrend, "INTENT_TREND_", scoresv1.IntentTrend_value); ok {
		p.IntentTrend = scoresv1.IntentTrend(v)
	} else {
		errs = append(errs, intake.FieldError{Field: "intent_trend", Message: fmt.Sprintf("%q is not one of none, new, surging, heating, neutral, cooling", s.IntentTrend)})
	}
	grade := s.IcpFitGrade
	if grade == "—" || grade == "-" {
		grade = "none"
	}
	if v, ok := parseEnum(grade, "FIT_GRADE_", scoresv1.FitGrade_value); ok {
		p.IcpFitGrade = scoresv1.FitGrade(v)
	} else {
		errs = append(errs, intake.FieldError{Field: "icp_fit_grade", Message: fmt.Sprintf("%q is not one of A, B, C, D, none", s.IcpFitGrade)})
	}
	ts, err := parseTime(s.ScoredAt)
	if err != nil {
		errs = append(errs, intake.FieldError{Field: "scored_at", Message: err.Error()})
	}
	p.ScoredAt = ts
	return intake.ScoreItem{Score: p, Errors: errs}
}

// parseEnum maps "very_high" / "Very High" to the enum value with the given prefix; "" is the
// zero value.
func parseEnum(s, prefix string, values map[string]int32) (int32, bool) {
	if s == "" {
		return 0, true
	}
	name := prefix + strings.ToUpper(strings.NewReplacer(" ", "_", "-", "_").Replace(strings.TrimSpace(s)))
	if strings.HasSuffix(name, "_UNSPECIFIED") {
		return 0, false
	}
	v, ok := values[name]
	return v, ok
}

// parseTime accepts an RFC 3339 string or epoch milliseconds; absent is nil (the intake
// defaults it).
func parseTime(raw json.RawMessage) (*timestamppb.Timestamp, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("invalid string: %v", err)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an RFC 3339 timestamp (like 2026-11-23T10:00:00Z)", s)
		}
		return timestamppb.New(t), nil
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s is neither an RFC 3339 string nor epoch milliseconds", raw)
	}
	return timestamppb.New(time.UnixMilli(ms)), nil
}
