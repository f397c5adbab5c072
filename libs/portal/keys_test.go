package portal

import (
	"regexp"
	"strings"
	"testing"
)

func TestHashAPIKey(t *testing.T) {
	t.Parallel()
	// SHA-256("abc") from FIPS 180-2.
	const want = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := HashAPIKey("abc"); got != want {
		t.Errorf("HashAPIKey(abc) = %s, want %s", got, want)
	}
}

func TestNewAPIKey(t *testing.T) {
	t.Parallel()
	format := regexp.MustCompile(`^sbk_[0-9A-Za-z]{43}$`)
	seen := map[string]bool{}
	for range 200 {
		k, err := NewAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if !format.MatchString(k) {
			t.Fatalf("NewAPIKey() = %q, want sbk_ + 43 base62 digits", k)
		}
		if seen[k] {
			t.Fatalf("NewAPIKey returned %q twice", k)
		}
		seen[k] = true
	}
	// A fresh key's hash is accepted in a config; the key itself is not.
	k, _ := NewAPIKey()
	if _, err := Parse([]byte(minimalYAML + "ingest:\n  api_keys:\n    - { name: new, hash: \"" + HashAPIKey(k) + "\" }\n")); err != nil {
		t.Errorf("config with HashAPIKey(NewAPIKey()) rejected: %v", err)
	}
	_, err := Parse([]byte(minimalYAML + "ingest:\n  api_keys:\n    - { name: new, hash: \"" + k + "\" }\n"))
	if err == nil || strings.Contains(err.Error(), k) {
		t.Errorf("plain key accepted, or echoed in the error: %v", err)
	}
}

func TestAuthenticateKey(t *testing.T) {
	t.Parallel()
	cfg, err := Parse(readDemo(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key, name string
		ok        bool
	}{
		{"sbk_DEMOwebAnalytics000000000000000000000000000", "web-analytics", true},
		{"sbk_DEMOsegmentWarehouse00000000000000000000000", "segment-warehouse", true},
		{"sbk_DEMOwebAnalytics000000000000000000000000001", "", false},
		{"sbk_DEMOwebAnalytics00000000000000000000000000", "", false},
		{"", "", false},
		{"sha256:77336219be2d22b6768f7847f91e12ac09a2e3ac1d00f02bb44d9198cd4b40d8", "", false}, // the hash is not the key
	}
	for _, c := range cases {
		name, ok := cfg.AuthenticateKey(c.key)
		if name != c.name || ok != c.ok {
			t.Errorf("AuthenticateKey(%q) = %q, %v; want %q, %v", c.key, name, ok, c.name, c.ok)
		}
	}
	// A malformed stored hash (a config that bypassed Validate) never matches
	// and does not stop the search.
	odd := &Config{Ingest: Ingest{APIKeys: []APIKey{
		{Name: "broken", Hash: "sha256:zz"},
		{Name: "empty", Hash: ""},
		{Name: "good", Hash: HashAPIKey("secret")},
	}}}
	if name, ok := odd.AuthenticateKey("secret"); !ok || name != "good" {
		t.Errorf("AuthenticateKey past malformed hashes = %q, %v", name, ok)
	}
	if _, ok := (&Config{}).AuthenticateKey("secret"); ok {
		t.Error("a portal without keys authenticated a key")
	}
}
