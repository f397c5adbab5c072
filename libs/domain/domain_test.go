package domain

import (
	"errors"
	"strings"
	"testing"
)

type normalizeCase struct {
	name   string
	in     string
	want   string // expected output when err is nil
	err    error  // expected sentinel
	reason string // substring of the reason
}

var normalizeCases = []normalizeCase{
	// Accepted inputs.
	{name: "plain", in: "example.com", want: "example.com"},
	{name: "url with www, path and case", in: "https://www.Dropbox.com/app", want: "dropbox.com"},
	{name: "upper case www and trailing dot", in: "WWW.EXAMPLE.COM.", want: "example.com"},
	{name: "userinfo port path query fragment", in: "http://user:pw@shop.example.co.uk:8443/x?y#z", want: "shop.example.co.uk"},
	{name: "surrounding white space", in: " \t example.com \n", want: "example.com"},
	{name: "http scheme", in: "http://example.com", want: "example.com"},
	{name: "any scheme", in: "ftp://files.example.com/pub", want: "files.example.com"},
	{name: "scheme with plus and digits", in: "git+ssh2://git.example.com", want: "git.example.com"},
	{name: "upper case scheme", in: "HTTPS://Example.com", want: "example.com"},
	{name: "scheme relative", in: "//cdn.example.com/lib.js", want: "cdn.example.com"},
	{name: "trailing slash", in: "example.com/", want: "example.com"},
	{name: "query only", in: "example.com?utm_source=x", want: "example.com"},
	{name: "fragment only", in: "example.com#top", want: "example.com"},
	{name: "port only", in: "example.com:8080", want: "example.com"},
	{name: "userinfo without password", in: "user@example.com", want: "example.com"},
	{name: "subdomain kept", in: "us.test.com", want: "us.test.com"},
	{name: "www2 kept", in: "www2.example.com", want: "www2.example.com"},
	{name: "www inside kept", in: "app.www.example.com", want: "app.www.example.com"},
	{name: "repeated www stripped", in: "www.www.example.com", want: "example.com"},
	{name: "www.com kept: rest is a suffix", in: "www.com", want: "www.com"},
	{name: "www.co.uk kept: rest is a suffix", in: "https://www.co.uk", want: "www.co.uk"},
	{name: "www under private suffix", in: "www.acme.github.io", want: "acme.github.io"},
	{name: "name under private suffix", in: "acme.github.io", want: "acme.github.io"},
	{name: "idn to punycode", in: "bücher.de", want: "xn--bcher-kva.de"},
	{name: "idn upper case", in: "https://www.BÜCHER.de/katalog", want: "xn--bcher-kva.de"},
	{name: "punycode input kept", in: "xn--bcher-kva.de", want: "xn--bcher-kva.de"},
	{name: "non-transitional sharp s", in: "faß.de", want: "xn--fa-hia.de"},
	{name: "full-width www and dot", in: "ｗｗｗ．example.com", want: "example.com"},
	{name: "ideographic full stop", in: "example。com", want: "example.com"},
	{name: "idn tld", in: "пример.рф", want: "xn--e1afmkfd.xn--p1ai"},
	{name: "hyphen inside", in: "t-online.de", want: "t-online.de"},
	{name: "digits in labels", in: "123.example.com", want: "123.example.com"},
	{name: "63 octet label", in: strings.Repeat("a", 63) + ".com", want: strings.Repeat("a", 63) + ".com"},
	{name: "253 octets", in: long253(), want: long253()},
	{name: "onion is ICANN special use", in: "expyuzz4wqqyqhjn.onion", want: "expyuzz4wqqyqhjn.onion"},

	// Rejected inputs, one per rule.
	{name: "empty", in: "", err: ErrEmpty, reason: "empty input"},
	{name: "only spaces", in: "   ", err: ErrEmpty, reason: "empty input"},
	{name: "scheme only", in: "https://", err: ErrEmpty, reason: "no host name"},
	{name: "userinfo only", in: "https://user@/path", err: ErrEmpty, reason: "no host name"},
	{name: "port only host", in: ":8080", err: ErrEmpty, reason: "no host name"},
	{name: "ipv4", in: "192.168.1.10", err: ErrIPAddress, reason: "IP address"},
	{name: "ipv4 with scheme and port", in: "http://10.0.0.1:8080/admin", err: ErrIPAddress, reason: "10.0.0.1"},
	{name: "ipv6 bare", in: "2001:db8::1", err: ErrIPAddress, reason: "2001:db8::1"},
	{name: "ipv6 loopback", in: "::1", err: ErrIPAddress, reason: "IP address"},
	{name: "ipv6 bracketed", in: "[2001:db8::1]", err: ErrIPAddress, reason: "IP address"},
	{name: "ipv6 bracketed url with port", in: "https://[::1]:8443/x", err: ErrIPAddress, reason: "IP address"},
	{name: "full-width ipv4", in: "１２７．０．０．１", err: ErrIPAddress, reason: "127.0.0.1"},
	{name: "bracketed non ip", in: "[example.com]", err: ErrInvalid, reason: "not an IP address"},
	{name: "unclosed bracket", in: "[::1", err: ErrInvalid, reason: "unclosed"},
	{name: "bad port", in: "example.com:http", err: ErrInvalid, reason: `invalid port "http"`},
	{name: "port out of range", in: "example.com:70000", err: ErrInvalid, reason: "invalid port"},
	{name: "empty port", in: "example.com:", err: ErrInvalid, reason: `invalid port ""`},
	{name: "ICANN public suffix", in: "co.uk", err: ErrPublicSuffix, reason: "ICANN section"},
	{name: "bare tld", in: "com", err: ErrPublicSuffix, reason: "public suffix"},
	{name: "public suffix via url", in: "https://co.uk./", err: ErrPublicSuffix, reason: "co.uk is a public suffix"},
	{name: "private public suffix", in: "github.io", err: ErrPublicSuffix, reason: "private section"},
	{name: "private public suffix blogspot", in: "blogspot.com", err: ErrPublicSuffix, reason: "private section"},
	{name: "wildcard public suffix", in: "foo.ck", err: ErrPublicSuffix, reason: "public suffix"},
	{name: "no dot", in: "intranet", err: ErrInvalid, reason: "no dot"},
	{name: "localhost", in: "localhost", err: ErrInvalid, reason: "not a public domain"},
	{name: "localhost with port", in: "http://localhost:3000", err: ErrInvalid, reason: "not a public domain"},
	{name: "subdomain of localhost", in: "app.localhost", err: ErrInvalid, reason: "not a public domain"},
	{name: "unknown tld corp", in: "intranet.corp", err: ErrUnknownTLD, reason: `"corp" is not a known top-level domain`},
	{name: "unknown tld local", in: "printer.local", err: ErrUnknownTLD, reason: "top-level domain"},
	{name: "reserved tld test", in: "example.test", err: ErrUnknownTLD, reason: "top-level domain"},
	{name: "numeric tld", in: "1.2.3", err: ErrUnknownTLD, reason: "top-level domain"},
	{name: "label too long", in: strings.Repeat("a", 64) + ".com", err: ErrInvalid, reason: "64 octets long, more than 63"},
	{name: "name too long", in: "a" + long253(), err: ErrInvalid, reason: "254 octets long, more than 253"},
	{name: "huge input", in: strings.Repeat("a.", 2000) + "com", err: ErrInvalid, reason: "longer than 2048"},
	{name: "empty label", in: "example..com", err: ErrInvalid, reason: "empty label"},
	{name: "leading dot", in: ".example.com", err: ErrInvalid, reason: "empty label"},
	{name: "two trailing dots", in: "example.com..", err: ErrInvalid, reason: "empty label"},
	{name: "underscore", in: "my_company.com", err: ErrInvalid, reason: `invalid character '_'`},
	{name: "space inside", in: "my company.com", err: ErrInvalid, reason: `invalid character ' '`},
	{name: "comma", in: "example.com,example.org", err: ErrInvalid, reason: `invalid character ','`},
	{name: "backslash", in: `example.com\path`, err: ErrInvalid, reason: `invalid character '\\'`},
	{name: "leading hyphen", in: "-example.com", err: ErrInvalid, reason: "not a valid host name"},
	{name: "trailing hyphen", in: "example-.com", err: ErrInvalid, reason: "not a valid host name"},
	{name: "bad punycode", in: "xn--zz.com", err: ErrInvalid, reason: "not a valid host name"},
	{name: "zero width joiner", in: "a\u200db.com", err: ErrInvalid, reason: "not a valid host name"},
	{name: "invalid utf8", in: "ex\xffample.com", err: ErrInvalid, reason: "UTF-8"},
	{name: "email-like with bad host", in: "bob@", err: ErrEmpty, reason: "no host name"},
}

func long253() string {
	// 4 labels of 62 octets + "com" + 4 dots = 248+3+... build exactly 253.
	l := strings.Repeat("a", 62)
	s := l + "." + l + "." + l + "." + l // 251
	s = s[:249] + ".com"                 // 253
	return s
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	if n := len(long253()); n != 253 {
		t.Fatalf("long253 helper is %d octets", n)
	}
	for _, tc := range normalizeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Normalize(tc.in)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("Normalize(%q) error: %v", tc.in, err)
				}
				if got != tc.want {
					t.Fatalf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Normalize(%q) = %q, want error %v", tc.in, got, tc.err)
			}
			if got != "" {
				t.Errorf("Normalize(%q) returned %q together with an error", tc.in, got)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("Normalize(%q) error %v does not wrap %v", tc.in, err, tc.err)
			}
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("Normalize(%q) error %T is not *Error", tc.in, err)
			}
			if de.Input != tc.in || de.Kind != "domain" {
				t.Errorf("Error{Kind: %q, Input: %q}, want domain and %q", de.Kind, de.Input, tc.in)
			}
			if !strings.Contains(de.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", de.Reason, tc.reason)
			}
			if !strings.HasPrefix(err.Error(), "domain ") || !strings.HasSuffix(err.Error(), ": "+de.Reason) {
				t.Errorf("Error() = %q, want `domain \"...\": reason`", err.Error())
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	_, err := Normalize("co.uk")
	want := `domain "co.uk": co.uk is a public suffix (ICANN section of the Public Suffix List), not a domain of its own`
	if err == nil || err.Error() != want {
		t.Fatalf("Error() = %v, want %s", err, want)
	}
	long := strings.Repeat("é", 200) + ".com:x"
	_, err = Normalize(long)
	if err == nil {
		t.Fatal("want error")
	}
	if msg := err.Error(); len(msg) > 200 || !strings.Contains(msg, "…") {
		t.Errorf("long input not truncated in message: %d bytes %q", len(msg), msg)
	}
}

func TestNormalizeIsIdempotentOnTable(t *testing.T) {
	t.Parallel()
	for _, tc := range normalizeCases {
		if tc.err != nil {
			continue
		}
		again, err := Normalize(tc.want)
		if err != nil || again != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want it unchanged", tc.want, again, err)
		}
	}
}

func TestRegistrable(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"https://shop.example.co.uk/x", "example.co.uk"},
		{"www.example.com", "example.com"},
		{"a.b.c.example.com", "example.com"},
		{"acme.github.io", "acme.github.io"},
		{"docs.acme.github.io", "acme.github.io"},
		{"www.com", "www.com"},
	}
	for _, c := range cases {
		got, err := Registrable(c.in)
		if err != nil || got != c.want {
			t.Errorf("Registrable(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := Registrable("co.uk"); !errors.Is(err, ErrPublicSuffix) {
		t.Errorf("Registrable(co.uk) error = %v, want ErrPublicSuffix", err)
	}
}

func TestFreeMail(t *testing.T) {
	t.Parallel()
	list := FreeMailDomains()
	if len(list) < 60 {
		t.Fatalf("free-mail list has %d entries, want a realistic list (≥ 60)", len(list))
	}
	for i, d := range list {
		if i > 0 && list[i-1] >= d {
			t.Errorf("list not sorted and unique at %d: %q then %q", i, list[i-1], d)
		}
		if n, err := Normalize(d); err != nil || n != d {
			t.Errorf("entry %q normalises to %q, %v; every entry must be canonical", d, n, err)
		}
		if !IsFreeMail(d) {
			t.Errorf("IsFreeMail(%q) = false for a listed domain", d)
		}
	}
	for _, d := range []string{"gmail.com", "googlemail.com", "outlook.com", "hotmail.co.uk", "yahoo.co.jp", "gmx.de", "web.de", "qq.com", "163.com", "proton.me", "icloud.com"} {
		if !IsFreeMail(d) {
			t.Errorf("IsFreeMail(%q) = false", d)
		}
	}
	for _, d := range []string{"", "example.com", "google.com", "microsoft.com", "mail.yahoo.com", "GMAIL.COM", "gmail.co"} {
		if IsFreeMail(d) {
			t.Errorf("IsFreeMail(%q) = true", d)
		}
	}
	// The copy is a copy.
	list[0] = "zzz.example"
	if FreeMailDomains()[0] == "zzz.example" {
		t.Error("FreeMailDomains returned the package's own slice")
	}
}

func BenchmarkNormalize(b *testing.B) {
	inputs := []string{"https://www.Example.com/path?q=1", "us.test.com", "acme-corp.co.uk", "münchen.de"}
	for i := 0; b.Loop(); i++ {
		if _, err := Normalize(inputs[i%len(inputs)]); err != nil {
			b.Fatal(err)
		}
	}
}
