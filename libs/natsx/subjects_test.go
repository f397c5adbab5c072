package natsx_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/signalbridge/signalbridge/libs/natsx"
)

func TestValidToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"portal id digits", "12345678", true},
		{"letters dash underscore", "Ab_c-9", true},
		{"max length", strings.Repeat("a", 64), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", 65), false},
		{"dot", "12.34", false},
		{"star", "*", false},
		{"gt", ">", false},
		{"space", "12 34", false},
		{"tab", "12\t34", false},
		{"newline", "12\n", false},
		{"non ascii", "é", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := natsx.ValidToken(tt.token)
			if tt.ok && err != nil {
				t.Fatalf("ValidToken(%q) = %v, want nil", tt.token, err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatalf("ValidToken(%q) = nil, want error", tt.token)
				}
				if !errors.Is(err, natsx.ErrInvalidToken) {
					t.Fatalf("ValidToken(%q) = %v, want ErrInvalidToken", tt.token, err)
				}
			}
		})
	}
}

func TestSubjects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, want string
	}{
		{natsx.SignalReceivedSubject("42"), "signals.v1.42.received"},
		{natsx.SignalMatchedSubject("42"), "signals.v1.42.matched"},
		{natsx.ScoreUpdatedSubject("42"), "scores.v1.42.updated"},
		{natsx.HubSpotEventSubject("42", "contact", "propertyChange"), "hubspot.v1.42.contact.propertyChange"},
		{natsx.ContactLocalSubject("42"), "contacts.v1.42.local"},
		{natsx.ContactChangedSubject("42"), "contacts.v1.42.changed"},
		{natsx.ActionOutcomeSubject("42", "task", "created"), "actions.v1.42.task.created"},
		{natsx.DLQSubject("SIGNALS", "matcher-signals"), "dlq.SIGNALS.matcher-signals"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("subject = %q, want %q", tt.got, tt.want)
		}
	}
}

func TestSubjectTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		subject, template, portal string
	}{
		{"signals.v1.42.received", "signals.v1.{portal}.received", "42"},
		{"hubspot.v1.777.contact.creation", "hubspot.v1.{portal}.contact.creation", "777"},
		{"actions.v12.9.task.failed", "actions.v12.{portal}.task.failed", "9"},
		{"scores.v1.42", "scores.v1.{portal}", "42"},
		{"dlq.SIGNALS.matcher-signals", "dlq.SIGNALS.matcher-signals", ""},
		{"signals.vx.42.received", "signals.vx.42.received", ""},
		{"signals.v1", "signals.v1", ""},
		{"signals.v1.", "signals.v1.", ""},
		{"plain", "plain", ""},
	}
	for _, tt := range tests {
		if got := natsx.SubjectTemplate(tt.subject); got != tt.template {
			t.Errorf("SubjectTemplate(%q) = %q, want %q", tt.subject, got, tt.template)
		}
		if got := natsx.PortalOf(tt.subject); got != tt.portal {
			t.Errorf("PortalOf(%q) = %q, want %q", tt.subject, got, tt.portal)
		}
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("bad payload")
	tests := []struct {
		name      string
		err       error
		permanent bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"marked", natsx.Permanent(base), true},
		{"wrapped sentinel", errors.Join(base, natsx.ErrPermanent), true},
		{"marked then wrapped", errors.Join(errors.New("ctx"), natsx.Permanent(base)), true},
	}
	for _, tt := range tests {
		if got := natsx.IsPermanent(tt.err); got != tt.permanent {
			t.Errorf("%s: IsPermanent = %v, want %v", tt.name, got, tt.permanent)
		}
	}
	if natsx.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if err := natsx.Permanent(base); !errors.Is(err, base) || err.Error() != base.Error() {
		t.Errorf("Permanent(base) = %v, want to wrap base and keep its message", err)
	}
}

func TestDefaultBackoff(t *testing.T) {
	t.Parallel()
	want := []string{"1s", "1s", "5s", "30s", "2m0s", "10m0s", "10m0s"}
	for n, w := range want {
		if got := natsx.DefaultBackoff(uint64(n)).String(); got != w {
			t.Errorf("DefaultBackoff(%d) = %s, want %s", n, got, w)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     natsx.Config
		wantErr string
	}{
		{"ok", natsx.Config{URL: "nats://x:4222"}, ""},
		{"no url", natsx.Config{}, "Config.URL is empty"},
		{"two credentials", natsx.Config{URL: "nats://x", Token: "t", CredsFile: "f"}, "only one of"},
		{"password without user", natsx.Config{URL: "nats://x", Password: "p"}, "Config.User is empty"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: Validate() = %v, want nil", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: Validate() = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
}
