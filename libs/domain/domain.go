// Package domain turns the many ways people write a company's web address or a
// person's e-mail address into one canonical form, so that "https://www.Dropbox.com/app",
// "WWW.DROPBOX.COM." and "dropbox.com" all match the same HubSpot company.
//
// # Domains
//
// [Normalize] accepts a bare host name or a URL and returns the host in lower-case
// ASCII (internationalised names in punycode). It:
//
//   - trims surrounding white space;
//   - strips a scheme ("https://", "ftp://", any "scheme://") or a scheme-relative "//";
//   - strips user info ("user:pass@"), a port (":8443"), the path, the query and the fragment;
//   - strips a trailing dot (the DNS root);
//   - maps the name with IDNA (UTS #46, non-transitional lookup profile): upper case and
//     full-width forms are folded, "bücher.de" becomes "xn--bcher-kva.de";
//   - strips a leading "www." label, repeatedly ("www.www.x.com" is a typo seen in the
//     wild), unless what would remain is itself a public suffix: "www.com" and
//     "www.co.uk" are registered domains in their own right and stay as they are.
//     Only "www" is stripped; "www2.example.com" and every other subdomain stay
//     distinct ("us.example.com" is not "example.com").
//
// It rejects, with an [*Error] that wraps one of the sentinel errors:
//
//   - empty input ([ErrEmpty]);
//   - IPv4 and IPv6 addresses, bracketed or not, with or without a port ([ErrIPAddress]);
//   - names that are not valid host names: invalid characters, empty labels, labels
//     longer than 63 octets, names longer than 253 octets, names without a dot,
//     "localhost", invalid punycode, a bad port ([ErrInvalid]);
//   - names whose top-level domain is not an ICANN top-level domain known to the
//     Public Suffix List ([ErrUnknownTLD]): "intranet.corp", "printer.local",
//     "build.internal", "example.test". Such names cannot belong to a company on the
//     public internet. The list is the snapshot compiled into golang.org/x/net; a
//     brand-new TLD is rejected until that module is updated.
//   - bare public suffixes ([ErrPublicSuffix]): both ICANN ones ("com", "co.uk") and
//     those in the list's private section ("github.io", "blogspot.com",
//     "s3.amazonaws.com"). A bare suffix names no single organisation, whereas a name
//     under it ("acme.github.io") does, so the latter is accepted as it is.
//
// Normalize never reduces a name to its registrable domain; use [Registrable] for that.
//
// # E-mail addresses
//
// [NormalizeEmail] accepts a bare address ("b@x.com") only. See its documentation.
package domain

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Sentinel errors. Every error returned by this package is an [*Error] that wraps
// one or more of them, so callers can test with errors.Is.
var (
	// ErrEmpty: the input is empty or holds no host name.
	ErrEmpty = errors.New("empty")
	// ErrInvalid: the input is not a syntactically valid public host name.
	ErrInvalid = errors.New("invalid domain")
	// ErrIPAddress: the input is an IP address, not a domain name.
	ErrIPAddress = errors.New("ip address")
	// ErrPublicSuffix: the input is a bare public suffix such as "co.uk" or "github.io".
	ErrPublicSuffix = errors.New("public suffix")
	// ErrUnknownTLD: the top-level domain is not an ICANN TLD ("corp", "local", "internal").
	ErrUnknownTLD = errors.New("unknown top-level domain")
	// ErrInvalidEmail: the input is not an acceptable e-mail address. Every error
	// from [NormalizeEmail] wraps it, together with the domain sentinel when the
	// domain part is at fault.
	ErrInvalidEmail = errors.New("invalid email")
)

// Limits from RFC 1035 / RFC 5321.
const (
	maxLabelLen  = 63
	maxDomainLen = 253
	// maxInputLen bounds the work done on hostile input before IDNA mapping.
	maxInputLen = 2048
)

// Error describes why an input was rejected.
type Error struct {
	// Kind is "domain" or "email": what the input was supposed to be.
	Kind string
	// Input is the raw input as given.
	Input string
	// Reason says what is wrong, for a person to read.
	Reason string
	// Err is the sentinel (or a wrapping of several) that classifies the failure.
	Err error
}

// Error formats the error as `domain "x": reason` (or `email "x": reason`).
func (e *Error) Error() string {
	kind := e.Kind
	if kind == "" {
		kind = "domain"
	}
	return fmt.Sprintf("%s %q: %s", kind, truncate(e.Input, 120), e.Reason)
}

// Unwrap returns the sentinel error, for errors.Is.
func (e *Error) Unwrap() error { return e.Err }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func domainErr(input string, sentinel error, format string, args ...any) *Error {
	return &Error{Kind: "domain", Input: input, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

// Normalize returns the canonical form of a domain name or URL; see the package
// documentation for the rules. Examples:
//
//	"https://www.Dropbox.com/app"                   → "dropbox.com"
//	"WWW.EXAMPLE.COM."                              → "example.com"
//	"http://user:pw@shop.example.co.uk:8443/x?y#z"  → "shop.example.co.uk"
//	"bücher.de"                                     → "xn--bcher-kva.de"
func Normalize(raw string) (string, error) {
	host, err := hostFromInput(raw)
	if err != nil {
		return "", err
	}
	d, err := canonicalHost(raw, host)
	if err != nil {
		return "", err
	}
	return stripWWW(d), nil
}

// hostFromInput extracts the host part of a URL-ish input: it removes the scheme,
// user info, path, query, fragment and port, and rejects bracketed IP literals.
func hostFromInput(raw string) (string, *Error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", domainErr(raw, ErrEmpty, "empty input")
	}
	if len(s) > maxInputLen {
		return "", domainErr(raw, ErrInvalid, "input longer than %d bytes", maxInputLen)
	}
	if i := strings.Index(s, "://"); i > 0 && isScheme(s[:i]) {
		s = s[i+len("://"):]
	} else {
		s = strings.TrimPrefix(s, "//") // scheme-relative URL
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "", domainErr(raw, ErrEmpty, "no host name in input")
	}

	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", domainErr(raw, ErrInvalid, "unclosed '[' in host")
		}
		if _, err := netip.ParseAddr(s[1:end]); err == nil {
			return "", domainErr(raw, ErrIPAddress, "%s is an IP address, not a domain name", s[1:end])
		}
		return "", domainErr(raw, ErrInvalid, "bracketed host %q is not an IP address", s[:end+1])
	}
	// A bare IPv6 address ("::1", "2001:db8::1") has colons that are not a port.
	if ip, err := netip.ParseAddr(s); err == nil {
		return "", domainErr(raw, ErrIPAddress, "%s is an IP address, not a domain name", ip)
	}
	if i := strings.LastIndex(s, ":"); i >= 0 {
		if port := s[i+1:]; !validPort(port) {
			return "", domainErr(raw, ErrInvalid, "invalid port %q", port)
		}
		s = s[:i]
	}
	if s == "" {
		return "", domainErr(raw, ErrEmpty, "no host name in input")
	}
	return s, nil
}

// isScheme reports whether s is an RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

// canonicalHost maps a bare host name to lower-case ASCII and applies every
// validity rule except www stripping. input is the caller's original input, for
// error messages.
func canonicalHost(input, host string) (string, *Error) {
	if len(host) > maxInputLen {
		return "", domainErr(input, ErrInvalid, "host name longer than %d bytes", maxInputLen)
	}
	if !utf8.ValidString(host) {
		return "", domainErr(input, ErrInvalid, "host name is not valid UTF-8")
	}
	for _, r := range host {
		if r < utf8.RuneSelf && !isLDHOrDot(byte(r)) {
			return "", domainErr(input, ErrInvalid, "invalid character %q in host name", r)
		}
	}
	a, err := idna.Lookup.ToASCII(host)
	if err != nil {
		return "", domainErr(input, ErrInvalid, "not a valid host name (%v)", err)
	}
	a = strings.TrimSuffix(a, ".")
	if a == "" {
		return "", domainErr(input, ErrEmpty, "no host name in input")
	}
	// IDNA folds full-width digits and dots, so look for an address again.
	if ip, err := netip.ParseAddr(a); err == nil {
		return "", domainErr(input, ErrIPAddress, "%s is an IP address, not a domain name", ip)
	}
	if a == "localhost" || strings.HasSuffix(a, ".localhost") {
		return "", domainErr(input, ErrInvalid, "%s is not a public domain", a)
	}
	if len(a) > maxDomainLen {
		return "", domainErr(input, ErrInvalid, "name is %d octets long, more than %d", len(a), maxDomainLen)
	}
	labels := strings.Split(a, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return "", domainErr(input, ErrInvalid, "empty label in %q", a)
		case len(l) > maxLabelLen:
			return "", domainErr(input, ErrInvalid, "label %q is %d octets long, more than %d", truncate(l, 20), len(l), maxLabelLen)
		case l[0] == '-' || l[len(l)-1] == '-':
			return "", domainErr(input, ErrInvalid, "label %q starts or ends with a hyphen", l)
		}
		for i := 0; i < len(l); i++ {
			if !isLDH(l[i]) {
				return "", domainErr(input, ErrInvalid, "invalid character %q in host name", l[i])
			}
		}
	}
	tld := labels[len(labels)-1]
	// Probe with a label below the TLD: wildcard-only TLDs ("*.ck") have no rule
	// of their own, so asking about the bare TLD would miss them.
	_, tldKnown := publicsuffix.PublicSuffix("x." + tld)
	if len(labels) < 2 && !tldKnown {
		return "", domainErr(input, ErrInvalid, "%q has no dot: a domain needs a name and a top-level domain", a)
	}
	if !tldKnown {
		return "", domainErr(input, ErrUnknownTLD, "%q is not a known top-level domain", tld)
	}
	if ps, icann := publicsuffix.PublicSuffix(a); ps == a {
		section := "private"
		if icann {
			section = "ICANN"
		}
		return "", domainErr(input, ErrPublicSuffix, "%s is a public suffix (%s section of the Public Suffix List), not a domain of its own", a, section)
	}
	return a, nil
}

func isLDH(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-'
}

func isLDHOrDot(c byte) bool {
	return isLDH(c) || 'A' <= c && c <= 'Z' || c == '.'
}

// stripWWW removes leading "www." labels as long as what remains is not a public suffix.
func stripWWW(d string) string {
	for strings.HasPrefix(d, "www.") {
		rest := d[len("www."):]
		if ps, _ := publicsuffix.PublicSuffix(rest); ps == rest {
			break
		}
		d = rest
	}
	return d
}

// Registrable returns the registrable domain (eTLD+1) of a name: "shop.example.co.uk"
// → "example.co.uk", "acme.github.io" → "acme.github.io". The input is normalised first.
func Registrable(raw string) (string, error) {
	d, err := Normalize(raw)
	if err != nil {
		return "", err
	}
	r, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		// Normalize has already rejected bare suffixes, so this is unexpected.
		return "", domainErr(raw, ErrInvalid, "no registrable domain (%v)", err)
	}
	return r, nil
}
