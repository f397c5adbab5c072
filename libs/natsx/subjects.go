package natsx

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidToken is wrapped by ValidToken's errors.
var ErrInvalidToken = errors.New("invalid subject token")

// maxTokenLen bounds a portal id or other variable subject token.
const maxTokenLen = 64

// ValidToken checks that s can be one token of a subject: 1-64 characters
// from [A-Za-z0-9_-]. HubSpot portal ids are decimal digits; '.', '*', '>'
// and whitespace would change the subject's meaning and are rejected.
//
// The subject helpers below do not validate: check portal ids (and any other
// token that comes from outside) with ValidToken at the edge.
func ValidToken(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrInvalidToken)
	}
	if len(s) > maxTokenLen {
		return fmt.Errorf("%w: %q is %d bytes long, at most %d allowed", ErrInvalidToken, s, len(s), maxTokenLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			continue
		}
		return fmt.Errorf("%w: %q has %q at byte %d; only A-Z, a-z, 0-9, '_' and '-' are allowed", ErrInvalidToken, s, c, i)
	}
	return nil
}

// Subject prefixes, one per stream (see DefaultTopology).
const (
	signalsPrefix  = "signals.v1."
	scoresPrefix   = "scores.v1."
	hubspotPrefix  = "hubspot.v1."
	contactsPrefix = "contacts.v1."
	actionsPrefix  = "actions.v1."
	dlqPrefix      = "dlq."
)

// SignalReceivedSubject is signals.v1.<portal>.received.
func SignalReceivedSubject(portal string) string { return signalsPrefix + portal + ".received" }

// SignalMatchedSubject is signals.v1.<portal>.matched.
func SignalMatchedSubject(portal string) string { return signalsPrefix + portal + ".matched" }

// ScoreUpdatedSubject is scores.v1.<portal>.updated.
func ScoreUpdatedSubject(portal string) string { return scoresPrefix + portal + ".updated" }

// HubSpotEventSubject is hubspot.v1.<portal>.<object>.<event>, e.g.
// hubspot.v1.123.contact.propertyChange.
func HubSpotEventSubject(portal, object, event string) string {
	return hubspotPrefix + portal + "." + object + "." + event
}

// ContactLocalSubject is contacts.v1.<portal>.local: a contact change made
// by a local system, to be written to HubSpot.
func ContactLocalSubject(portal string) string { return contactsPrefix + portal + ".local" }

// ContactChangedSubject is contacts.v1.<portal>.changed: a contact change
// that came from HubSpot, for local systems.
func ContactChangedSubject(portal string) string { return contactsPrefix + portal + ".changed" }

// ActionOutcomeSubject is actions.v1.<portal>.<kind>.<outcome>.
func ActionOutcomeSubject(portal, kind, outcome string) string {
	return actionsPrefix + portal + "." + kind + "." + outcome
}

// DLQSubject is dlq.<stream>.<consumer>.
func DLQSubject(stream, consumer string) string { return dlqPrefix + stream + "." + consumer }

// PortalPlaceholder replaces the portal token in subject templates.
const PortalPlaceholder = "{portal}"

// SubjectTemplate returns subject with its high-cardinality token (the
// portal, the third token of "<domain>.v<N>.<portal>...") replaced by
// {portal}, for span names and metric labels. Other subjects, such as DLQ
// subjects, are returned as they are.
func SubjectTemplate(subject string) string {
	portal, start, ok := portalToken(subject)
	if !ok {
		return subject
	}
	return subject[:start] + PortalPlaceholder + subject[start+len(portal):]
}

// PortalOf returns the portal token of a versioned subject
// ("<domain>.v<N>.<portal>..."), or "" if subject has none.
func PortalOf(subject string) string {
	p, _, _ := portalToken(subject)
	return p
}

func portalToken(subject string) (portal string, start int, ok bool) {
	first := strings.IndexByte(subject, '.')
	if first <= 0 {
		return "", 0, false
	}
	rest := subject[first+1:]
	second := strings.IndexByte(rest, '.')
	if second < 2 || rest[0] != 'v' || strings.Trim(rest[1:second], "0123456789") != "" {
		return "", 0, false
	}
	start = first + 1 + second + 1
	portal = subject[start:]
	if end := strings.IndexByte(portal, '.'); end >= 0 {
		portal = portal[:end]
	}
	if portal == "" {
		return "", 0, false
	}
	return portal, start, true
}
