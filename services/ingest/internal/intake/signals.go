package intake

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/signalbridge/signalbridge/libs/domain"
	eventsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/events/v1"
	signalsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/signals/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
	"github.com/signalbridge/signalbridge/libs/portal"
)

// Limits on free-form fields, so one caller cannot bloat the stream.
const (
	maxIDLen       = 128
	maxTextLen     = 256
	maxAliases     = 50
	maxSegments    = 20
	maxAttributes  = 50
	maxAttrKeyLen  = 64
	maxAttrValLen  = 1024
	maxSegmentLen  = 64
	maxSourceLen   = 100
	signalIDPrefix = "sig:"
)

// SignalItem is one submitted signal, with the errors its front door already found while
// decoding it (a malformed timestamp, an unknown strength name).
type SignalItem struct {
	Signal *signalsv1.Signal
	Errors []FieldError
}

// Signals validates and normalises items (in place), publishes the valid ones as
// SignalReceived events on signals.v1.<portal>.received and returns one result per item.
// base is the index of items[0] in the caller's numbering. An error means nothing was
// stored; with natsx.ErrUnavailable in its chain the caller should retry later.
func (in *Intake) Signals(ctx context.Context, portalID, keyName string, items []SignalItem, base int) ([]Result, Counts, error) {
	if err := checkSize(len(items)); err != nil {
		return nil, Counts{}, err
	}
	cfg, ok := in.portals.Get(portalID)
	if !ok {
		return nil, Counts{}, ErrUnauthenticated
	}
	now := in.opts.Now()
	subject := natsx.SignalReceivedSubject(portalID)
	results := make([]Result, len(items))
	ready := make([]pending, 0, len(items))
	for i, item := range items {
		results[i] = Result{Index: base + i, Status: Rejected}
		errs := in.normaliseSignal(cfg, item.Signal, now, item.Errors)
		if item.Signal != nil {
			results[i].ID = item.Signal.GetId()
		}
		if len(errs) > 0 {
			results[i].Errors = errs
			continue
		}
		sig := item.Signal
		eventID := signalIDPrefix + portalID + ":" + sig.Id
		ev := &signalsv1.SignalReceived{
			Meta: &eventsv1.EventMeta{
				EventId:       eventID,
				PortalId:      portalID,
				OccurredAt:    sig.OccurredAt,
				Producer:      in.opts.Producer,
				CorrelationId: eventID,
				PublishedAt:   timestamppb.New(now),
			},
			Signal:      sig,
			SubmittedBy: keyName,
		}
		msg, err := natsx.NewMsg(ctx, subject, eventID, ev)
		if err != nil {
			results[i].Errors = []FieldError{{Field: "", Message: fmt.Sprintf("cannot encode: %v", err)}}
			continue
		}
		ready = append(ready, pending{index: i, msg: msg})
	}
	if err := in.publish(ctx, "signals", ready, results); err != nil {
		return nil, Counts{}, err
	}
	return results, in.count(ctx, "signals", results), nil
}

// normaliseSignal validates sig against cfg and normalises it in place. It returns every problem
// found, each naming its field.
func (in *Intake) normaliseSignal(cfg *portal.Config, sig *signalsv1.Signal, now time.Time, decodeErrs []FieldError) []FieldError {
	errs := append([]FieldError(nil), decodeErrs...)
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if sig == nil {
		add("", "signal is empty")
		return errs
	}
	if sig.Id == "" {
		id, err := uuid.NewV7()
		if err != nil {
			add("id", "cannot generate an id: %v", err)
		} else {
			sig.Id = id.String()
		}
	} else if msg := checkID(sig.Id); msg != "" {
		add("id", "%s", msg)
	}

	switch {
	case sig.Type == "":
		add("type", "required")
	case !cfg.SignalTypeAllowed(sig.Type):
		add("type", "unknown signal type %q for this portal", sig.Type)
	}

	if sig.Account == nil {
		sig.Account = &signalsv1.Account{}
	}
	acct := sig.Account
	if acct.Domain != "" {
		d, err := domain.Normalize(acct.Domain)
		if err != nil {
			add("account.domain", "%v", reason(err))
		} else {
			acct.Domain = d
		}
	}
	acct.Aliases = normaliseAliases(acct.Domain, acct.Aliases, "account.aliases", add)
	checkLen(add, "account.name", acct.Name, maxTextLen)
	checkLen(add, "account.external_id", acct.ExternalId, maxTextLen)
	if len(acct.Segments) > maxSegments {
		add("account.segments", "at most %d segments (got %d)", maxSegments, len(acct.Segments))
	}
	for i, s := range acct.Segments {
		if s == "" || len(s) > maxSegmentLen {
			add(fmt.Sprintf("account.segments[%d]", i), "must be 1 to %d characters", maxSegmentLen)
		}
	}

	emailDomain := ""
	if v := sig.Visitor; v != nil {
		if v.Email != "" {
			email, d, err := domain.NormalizeEmail(v.Email)
			if err != nil {
				add("visitor.email", "%v", reason(err))
			} else {
				v.Email, emailDomain = email, d
			}
		}
		checkLen(add, "visitor.first_name", v.FirstName, maxTextLen)
		checkLen(add, "visitor.last_name", v.LastName, maxTextLen)
		checkLen(add, "visitor.job_title", v.JobTitle, maxTextLen)
	}
	if acct.Domain == "" && len(acct.Aliases) == 0 {
		switch {
		case sig.GetVisitor().GetEmail() == "" && !hasField(errs, "account.domain") && !hasField(errs, "visitor.email"):
			add("account.domain", "required when visitor.email is empty")
		case emailDomain != "" && !domain.IsFreeMail(emailDomain):
			// A business email names the account.
			acct.Domain = emailDomain
		}
	}

	if _, ok := signalsv1.Strength_name[int32(sig.Strength)]; !ok {
		add("strength", "unknown strength %d", sig.Strength)
	}
	checkTime(add, "occurred_at", &sig.OccurredAt, now, in.opts)
	checkLen(add, "source", sig.Source, maxSourceLen)
	if len(sig.Attributes) > maxAttributes {
		add("attributes", "at most %d attributes (got %d)", maxAttributes, len(sig.Attributes))
	}
	for k, v := range sig.Attributes {
		if k == "" || len(k) > maxAttrKeyLen {
			add("attributes", "key %.70q must be 1 to %d characters", k, maxAttrKeyLen)
		}
		if len(v) > maxAttrValLen {
			add("attributes."+k, "at most %d characters (got %d)", maxAttrValLen, len(v))
		}
	}
	return errs
}

// normaliseAliases normalises each alias, drops repeats and the primary domain itself.
func normaliseAliases(primary string, aliases []string, field string, add func(string, string, ...any)) []string {
	if len(aliases) > maxAliases {
		add(field, "at most %d aliases (got %d)", maxAliases, len(aliases))
		return aliases
	}
	out := aliases[:0]
	seen := map[string]bool{primary: true}
	for i, a := range aliases {
		d, err := domain.Normalize(a)
		if err != nil {
			add(fmt.Sprintf("%s[%d]", field, i), "%v", reason(err))
			continue
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// checkTime defaults a missing timestamp to now and rejects one too far in the future or past.
func checkTime(add func(string, string, ...any), field string, ts **timestamppb.Timestamp, now time.Time, opts Options) {
	if *ts == nil {
		*ts = timestamppb.New(now)
		return
	}
	if err := (*ts).CheckValid(); err != nil {
		add(field, "invalid timestamp: %v", err)
		return
	}
	t := (*ts).AsTime()
	switch {
	case t.After(now.Add(opts.MaxFutureSkew)):
		add(field, "%s is in the future (more than %s after now)", t.Format(time.RFC3339), opts.MaxFutureSkew)
	case t.Before(now.Add(-opts.MaxAge)):
		add(field, "%s is older than %s", t.Format(time.RFC3339), opts.MaxAge)
	}
}

func checkLen(add func(string, string, ...any), field, v string, max int) {
	if len(v) > max {
		add(field, "at most %d characters (got %d)", max, len(v))
	}
}

// checkID allows ids that are safe in a NATS header and readable in logs.
func checkID(id string) string {
	if len(id) > maxIDLen {
		return fmt.Sprintf("at most %d characters (got %d)", maxIDLen, len(id))
	}
	for i, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.' || r == ':' || r == '/' || r == '@' || r == '+' || r == '='
		if !ok {
			return fmt.Sprintf("character %q at position %d is not allowed (use letters, digits and -_.:/@+=)", r, i)
		}
	}
	return ""
}

func hasField(errs []FieldError, field string) bool {
	for _, e := range errs {
		if e.Field == field {
			return true
		}
	}
	return false
}

// reason returns the human reason of a domain error without repeating the input, which the
// field name already locates.
func reason(err error) string {
	if de, ok := err.(*domain.Error); ok && de.Reason != "" {
		return fmt.Sprintf("%q: %s", de.Input, de.Reason)
	}
	return err.Error()
}
