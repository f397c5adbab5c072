package config

import (
	"encoding/json"
	"log/slog"
)

// masked is what a non-empty Secret prints as.
const masked = "***"

// Secret is a string that must not leak into logs, JSON or error messages.
// Every printing path (fmt verbs via String and GoString, encoding/json, slog)
// shows "***" for a non-empty value and "" for an empty one, so operators can
// still see whether a secret was set. Use Reveal to get the value.
type Secret string

// Reveal returns the secret value. Call it only where the value is used.
func (s Secret) Reveal() string { return string(s) }

// String returns "***" for a non-empty secret and "" for an empty one.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return masked
}

// GoString masks the secret for the %#v verb.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// MarshalJSON encodes the masked form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// LogValue makes slog print the masked form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
