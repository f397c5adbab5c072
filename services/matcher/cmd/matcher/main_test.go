package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSecretsFromEnvironmentOrFile(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TOKEN_A": "pat-a", "TOKEN_B_FILE": "/run/secrets/b", "TOKEN_C_FILE": "/run/secrets/missing"}
	reads := 0
	files := map[string]string{"/run/secrets/b": " pat-b\n"}
	now := time.Unix(1000, 0)
	s := newSecrets(func(k string) string { return env[k] }, func(p string) ([]byte, error) {
		reads++
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, errors.New("no such file")
	}, func() time.Time { return now })
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"TOKEN_A", "pat-a", true}, {"TOKEN_B", "pat-b", true}, {"TOKEN_C", "", false}, {"TOKEN_D", "", false}, {"", "", false},
	}
	for _, tc := range tests {
		if v, ok := s.lookup(tc.name); v != tc.want || ok != tc.ok {
			t.Errorf("lookup(%q) = %q, %v; want %q, %v", tc.name, v, ok, tc.want, tc.ok)
		}
	}
	// The file is cached for a minute, then read again (rotation).
	files["/run/secrets/b"] = "pat-b2"
	if v, _ := s.lookup("TOKEN_B"); v != "pat-b" {
		t.Errorf("within the TTL: %q", v)
	}
	now = now.Add(2 * time.Minute)
	if v, _ := s.lookup("TOKEN_B"); v != "pat-b2" {
		t.Errorf("after the TTL: %q", v)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SB_MATCHER_MATCH_BATCH": "5000", "SB_MATCHER_SIGNAL_CONSUMER": "fast"}
	err := run(t.Context(), func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "SB_MATCHER_MATCH_BATCH") || !strings.Contains(err.Error(), "SB_MATCHER_SIGNAL_CONSUMER") {
		t.Fatalf("err = %v, want both bad settings named", err)
	}
}
