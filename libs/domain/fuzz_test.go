package domain

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/publicsuffix"
)

// FuzzNormalize checks the invariants of Normalize on arbitrary input:
// no panic; on success the output is canonical (idempotent, lower-case ASCII
// letters, digits, hyphens and dots, at least one dot, at most 253 octets, no
// leading "www." unless the rest is a public suffix); on failure the error is an
// *Error with a non-empty reason.
func FuzzNormalize(f *testing.F) {
	for _, tc := range normalizeCases {
		f.Add(tc.in)
	}
	for _, d := range FreeMailDomains() {
		f.Add("https://www." + d + "/")
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in)
		if err != nil {
			checkError(t, err, "domain")
			if out != "" {
				t.Fatalf("Normalize(%q) returned %q with error %v", in, out, err)
			}
			return
		}
		checkCanonicalDomain(t, in, out)
		if rest, ok := strings.CutPrefix(out, "www."); ok {
			if ps, _ := publicsuffix.PublicSuffix(rest); ps != rest {
				t.Fatalf("Normalize(%q) = %q keeps a strippable www. prefix", in, out)
			}
		}
		again, err := Normalize(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: Normalize(%q) = %q, Normalize(%q) = %q, %v", in, out, out, again, err)
		}
	})
}

// FuzzNormalizeEmail checks NormalizeEmail: no panic; on success the address is
// local@domain with a valid canonical domain, lower-case, at most 254 octets, and
// normalising it again changes nothing; on failure an *Error wrapping ErrInvalidEmail.
func FuzzNormalizeEmail(f *testing.F) {
	for _, tc := range emailCases {
		f.Add(tc.in)
	}
	f.Add("Ünïcödé.Ñame@ПРИМЕР.РФ")
	f.Fuzz(func(t *testing.T, in string) {
		email, dom, err := NormalizeEmail(in)
		if err != nil {
			checkError(t, err, "email")
			if !errors.Is(err, ErrInvalidEmail) {
				t.Fatalf("NormalizeEmail(%q) error %v does not wrap ErrInvalidEmail", in, err)
			}
			return
		}
		local, d, ok := strings.Cut(email, "@")
		if !ok || d != dom || local == "" || strings.Contains(d, "@") {
			t.Fatalf("NormalizeEmail(%q) = %q, %q: not local@domain", in, email, dom)
		}
		if len(email) > maxEmailLen || strings.ToLower(email) != email {
			t.Fatalf("NormalizeEmail(%q) = %q: too long or not lower-case", in, email)
		}
		checkCanonicalDomain(t, in, dom)
		e2, d2, err := NormalizeEmail(email)
		if err != nil || e2 != email || d2 != dom {
			t.Fatalf("not idempotent: NormalizeEmail(%q) = %q, %q; again = %q, %q, %v", in, email, dom, e2, d2, err)
		}
	})
}

func checkError(t *testing.T, err error, kind string) {
	t.Helper()
	var de *Error
	if !errors.As(err, &de) {
		t.Fatalf("error %T (%v) is not *Error", err, err)
	}
	if de.Reason == "" || de.Kind != kind || de.Err == nil {
		t.Fatalf("error %#v: want kind %q, a reason and a sentinel", de, kind)
	}
}

func checkCanonicalDomain(t *testing.T, in, out string) {
	t.Helper()
	if out == "" || len(out) > maxDomainLen || !strings.Contains(out, ".") {
		t.Fatalf("%q → %q: empty, longer than 253 or without a dot", in, out)
	}
	for i := 0; i < len(out); i++ {
		if c := out[i]; !isLDH(c) && c != '.' {
			t.Fatalf("%q → %q: byte %q is not lower-case ASCII LDH", in, out, c)
		}
	}
}
