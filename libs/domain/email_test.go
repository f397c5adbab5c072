package domain

import (
	"errors"
	"strings"
	"testing"
)

type emailCase struct {
	name       string
	in         string
	wantEmail  string
	wantDomain string
	err        error // sentinel besides ErrInvalidEmail, or ErrInvalidEmail alone
	reason     string
}

var emailCases = []emailCase{
	{name: "plain", in: "bob@example.com", wantEmail: "bob@example.com", wantDomain: "example.com"},
	{name: "lower-cased whole address", in: "Bob.Smith@Example.COM", wantEmail: "bob.smith@example.com", wantDomain: "example.com"},
	{name: "trimmed", in: "  bob@example.com\n", wantEmail: "bob@example.com", wantDomain: "example.com"},
	{name: "sub-addressing kept", in: "bob+crm@example.com", wantEmail: "bob+crm@example.com", wantDomain: "example.com"},
	{name: "atext specials", in: "o'neil_j-x!#$%&*/=?^`{|}~@example.com", wantEmail: "o'neil_j-x!#$%&*/=?^`{|}~@example.com", wantDomain: "example.com"},
	{name: "www domain kept", in: "bob@www.example.com", wantEmail: "bob@www.example.com", wantDomain: "www.example.com"},
	{name: "subdomain kept", in: "bob@eu.example.co.uk", wantEmail: "bob@eu.example.co.uk", wantDomain: "eu.example.co.uk"},
	{name: "trailing dot in domain", in: "bob@example.com.", wantEmail: "bob@example.com", wantDomain: "example.com"},
	{name: "idn domain", in: "Jürgen@Bücher.de", wantEmail: "jürgen@xn--bcher-kva.de", wantDomain: "xn--bcher-kva.de"},
	{name: "free mail", in: "someone@gmail.com", wantEmail: "someone@gmail.com", wantDomain: "gmail.com"},
	{name: "64 octet local", in: strings.Repeat("x", 64) + "@example.com", wantEmail: strings.Repeat("x", 64) + "@example.com", wantDomain: "example.com"},

	{name: "empty", in: "", err: ErrEmpty, reason: "empty input"},
	{name: "blank", in: "  ", err: ErrEmpty, reason: "empty input"},
	{name: "no at", in: "bob.example.com", err: ErrInvalidEmail, reason: "exactly one '@', found 0"},
	{name: "two ats", in: "bob@x@example.com", err: ErrInvalidEmail, reason: "exactly one '@', found 2"},
	{name: "display name", in: "Bob <bob@example.com>", err: ErrInvalidEmail, reason: `only a bare address is accepted; pass "bob@example.com"`},
	{name: "angle brackets only", in: "<bob@example.com>", err: ErrInvalidEmail, reason: "only a bare address"},
	{name: "quoted display name", in: `"Smith, Bob" <bob@example.com>`, err: ErrInvalidEmail, reason: "only a bare address"},
	{name: "comment", in: "bob@example.com (Bob)", err: ErrInvalidEmail, reason: "only a bare address"},
	{name: "mailto", in: "mailto:bob@example.com", err: ErrInvalidEmail, reason: "mailto:"},
	{name: "empty local", in: "@example.com", err: ErrInvalidEmail, reason: "local part: empty"},
	{name: "local too long", in: strings.Repeat("x", 65) + "@example.com", err: ErrInvalidEmail, reason: "65 octets long, more than 64"},
	{name: "leading dot", in: ".bob@example.com", err: ErrInvalidEmail, reason: "starts or ends with a dot"},
	{name: "trailing dot", in: "bob.@example.com", err: ErrInvalidEmail, reason: "starts or ends with a dot"},
	{name: "double dot", in: "bo..b@example.com", err: ErrInvalidEmail, reason: "two dots"},
	{name: "space in local", in: "bo b@example.com", err: ErrInvalidEmail, reason: `invalid character ' '`},
	{name: "quoted local", in: `"bob"@example.com`, err: ErrInvalidEmail, reason: `only a bare address is accepted; pass "bob@example.com"`},
	{name: "quoted local with space", in: `"bob smith"@example.com`, err: ErrInvalidEmail, reason: "only a bare address"},
	{name: "comma in local", in: "bo,b@example.com", err: ErrInvalidEmail, reason: `invalid character ','`},
	{name: "control char", in: "bo\x01b@example.com", err: ErrInvalidEmail, reason: "invalid character"},
	{name: "empty domain", in: "bob@", err: ErrEmpty, reason: "empty domain part"},
	{name: "ip literal", in: "bob@[192.0.2.1]", err: ErrIPAddress, reason: "address literals"},
	{name: "bare ip domain", in: "bob@192.0.2.1", err: ErrIPAddress, reason: "domain part: 192.0.2.1 is an IP address"},
	{name: "public suffix domain", in: "bob@co.uk", err: ErrPublicSuffix, reason: "domain part: co.uk is a public suffix"},
	{name: "unknown tld", in: "admin@intranet.corp", err: ErrUnknownTLD, reason: "not a known top-level domain"},
	{name: "no dot domain", in: "root@localhost", err: ErrInvalid, reason: "not a public domain"},
	{name: "port in domain", in: "bob@example.com:25", err: ErrInvalid, reason: `invalid character ':'`},
	{name: "path in domain", in: "bob@example.com/x", err: ErrInvalid, reason: `invalid character '/'`},
	{name: "underscore domain", in: "bob@my_co.com", err: ErrInvalid, reason: `invalid character '_'`},
	{name: "too long overall", in: strings.Repeat("x", 64) + "@" + strings.Repeat("a", 62) + "." + strings.Repeat("a", 62) + "." + strings.Repeat("a", 60) + ".com", err: ErrInvalidEmail, reason: "more than 254"},
	{name: "invalid utf8", in: "b\xffob@example.com", err: ErrInvalidEmail, reason: "UTF-8"},
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range emailCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			email, dom, err := NormalizeEmail(tc.in)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("NormalizeEmail(%q) error: %v", tc.in, err)
				}
				if email != tc.wantEmail || dom != tc.wantDomain {
					t.Fatalf("NormalizeEmail(%q) = %q, %q; want %q, %q", tc.in, email, dom, tc.wantEmail, tc.wantDomain)
				}
				return
			}
			if err == nil {
				t.Fatalf("NormalizeEmail(%q) = %q, %q; want error %v", tc.in, email, dom, tc.err)
			}
			if email != "" || dom != "" {
				t.Errorf("values %q, %q returned together with an error", email, dom)
			}
			if !errors.Is(err, ErrInvalidEmail) {
				t.Errorf("error %v does not wrap ErrInvalidEmail", err)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("error %v does not wrap %v", err, tc.err)
			}
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not *Error", err)
			}
			if de.Kind != "email" || de.Input != tc.in {
				t.Errorf("Error{Kind: %q, Input: %q}, want email and %q", de.Kind, de.Input, tc.in)
			}
			if !strings.Contains(de.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", de.Reason, tc.reason)
			}
			if !strings.HasPrefix(err.Error(), "email ") {
				t.Errorf("Error() = %q, want it to start with `email `", err.Error())
			}
		})
	}
}

func TestNormalizeEmailFreeMailDomain(t *testing.T) {
	t.Parallel()
	_, dom, err := NormalizeEmail("Jane.Doe@GoogleMail.com")
	if err != nil {
		t.Fatal(err)
	}
	if !IsFreeMail(dom) {
		t.Errorf("IsFreeMail(%q) = false", dom)
	}
	_, dom, err = NormalizeEmail("jane@acme.io")
	if err != nil {
		t.Fatal(err)
	}
	if IsFreeMail(dom) {
		t.Errorf("IsFreeMail(%q) = true", dom)
	}
}
