package intake

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/signalbridge/signalbridge/libs/domain"
	eventsv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/events/v1"
	scoresv1 "github.com/signalbridge/signalbridge/libs/gen/signalbridge/scores/v1"
	"github.com/signalbridge/signalbridge/libs/natsx"
)

// ScoreItem is one submitted account score, with the errors its front door found decoding it.
type ScoreItem struct {
	Score  *scoresv1.AccountScore
	Errors []FieldError
}

// Scores validates and normalises items (in place), publishes the valid ones as ScoreUpdated
// events on scores.v1.<portal>.updated and returns one result per item. The event id is derived
// from the portal, the domain and scored_at, so a resubmitted score is stored once.
func (in *Intake) Scores(ctx context.Context, portalID, keyName string, items []ScoreItem, base int) ([]Result, Counts, error) {
	if err := checkSize(len(items)); err != nil {
		return nil, Counts{}, err
	}
	if _, ok := in.portals.Get(portalID); !ok {
		return nil, Counts{}, ErrUnauthenticated
	}
	now := in.opts.Now()
	subject := natsx.ScoreUpdatedSubject(portalID)
	results := make([]Result, len(items))
	ready := make([]pending, 0, len(items))
	for i, item := range items {
		results[i] = Result{Index: base + i, Status: Rejected}
		if errs := in.normaliseScore(item.Score, now, item.Errors); len(errs) > 0 {
			results[i].Errors = errs
			continue
		}
		sc := item.Score
		eventID := "score:" + portalID + ":" + sc.Domain + ":" + strconv.FormatInt(sc.ScoredAt.AsTime().UnixMilli(), 10)
		results[i].ID = eventID
		ev := &scoresv1.ScoreUpdated{
			Meta: &eventsv1.EventMeta{
				EventId:       eventID,
				PortalId:      portalID,
				OccurredAt:    sc.ScoredAt,
				Producer:      in.opts.Producer,
				CorrelationId: eventID,
				PublishedAt:   timestamppb.New(now),
			},
			Score:       sc,
			SubmittedBy: keyName,
		}
		msg, err := natsx.NewMsg(ctx, subject, eventID, ev)
		if err != nil {
			results[i].Errors = []FieldError{{Message: fmt.Sprintf("cannot encode: %v", err)}}
			continue
		}
		ready = append(ready, pending{index: i, msg: msg})
	}
	if err := in.publish(ctx, "scores", ready, results); err != nil {
		return nil, Counts{}, err
	}
	return results, in.count(ctx, "scores", results), nil
}

func (in *Intake) normaliseScore(sc *scoresv1.AccountScore, now time.Time, decodeErrs []FieldError) []FieldError {
	errs := append([]FieldError(nil), decodeErrs...)
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if sc == nil {
		add("", "score is empty")
		return errs
	}
	if sc.Domain == "" {
		if !hasField(errs, "domain") {
			add("domain", "required")
		}
	} else if d, err := domain.Normalize(sc.Domain); err != nil {
		add("domain", "%v", reason(err))
	} else {
		sc.Domain = d
	}
	sc.Aliases = normaliseAliases(sc.Domain, sc.Aliases, "aliases", add)
	checkScore(add, "intent_score", sc.IntentScore)
	checkScore(add, "icp_fit_score", sc.IcpFitScore)
	if _, ok := scoresv1.IntentStrength_name[int32(sc.IntentStrength)]; !ok {
		add("intent_strength", "unknown value %d", sc.IntentStrength)
	}
	if _, ok := scoresv1.IntentTrend_name[int32(sc.IntentTrend)]; !ok {
		add("intent_trend", "unknown value %d", sc.IntentTrend)
	}
	if _, ok := scoresv1.FitGrade_name[int32(sc.IcpFitGrade)]; !ok {
		add("icp_fit_grade", "unknown value %d", sc.IcpFitGrade)
	}
	checkLen(add, "external_id", sc.ExternalId, maxTextLen)
	checkTime(add, "scored_at", &sc.ScoredAt, now, in.opts)
	return errs
}

func checkScore(add func(string, string, ...any), field string, v float64) {
	if math.IsNaN(v) || v < 0 || v > 100 {
		add(field, "must be between 0 and 100 (got %v)", v)
	}
}
