package domain

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	maxLocalLen = 64  // RFC 5321 §4.5.3.1.1
	maxEmailLen = 254 // RFC 5321 path limit minus the angle brackets
)

func emailErr(input string, sentinel error, format string, args ...any) *Error {
	err := ErrInvalidEmail
	if sentinel != nil && sentinel != ErrInvalidEmail {
		err = fmt.Errorf("%w: %w", ErrInvalidEmail, sentinel)
	}
	return &Error{Kind: "email", Input: input, Reason: fmt.Sprintf(format, args...), Err: err}
}

// NormalizeEmail validates a bare e-mail address and returns it in canonical form,
// together with its canonical domain.
//
// Rules:
//   - Surrounding white space is trimmed. Only a bare address ("b@x.com") is
//     accepted: display-name forms ("Bob <b@x.com>"), comments, "mailto:" and quoted
//     local parts are rejected with a reason that says so.
//   - Exactly one "@"; a non-empty dot-atom local part of at most 64 octets
//     (RFC 5322 atext, plus non-ASCII letters per RFC 6531); at most 254 octets in all.
//   - The whole address is lower-cased. Local parts are case-sensitive in theory,
//     but no real mail provider treats them so, and HubSpot stores contact e-mails in
//     lower case; matching needs one form.
//   - The domain part follows the host rules of [Normalize] (IDNA to punycode,
//     trailing dot, public suffix, unknown TLD, IP literal, length) but is NOT
//     stripped of "www.": an address at "www.x.com" is rare and, if real, is served by
//     that host's MX, so it is kept as written (minus case and IDNA). URL parts
//     (scheme, port, path) are not allowed in an address and are rejected.
//   - Sub-addressing ("bob+tag@x.com") is kept: whether "+tag" is significant is the
//     provider's business.
//
// Every error is an [*Error] wrapping [ErrInvalidEmail]; when the domain part is at
// fault it also wraps the domain sentinel ([ErrPublicSuffix], [ErrIPAddress], ...).
func NormalizeEmail(raw string) (email string, domain string, err error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", "", emailErr(raw, ErrEmpty, "empty input")
	}
	if len(s) > maxInputLen {
		return "", "", emailErr(raw, nil, "input longer than %d bytes", maxInputLen)
	}
	if !utf8.ValidString(s) {
		return "", "", emailErr(raw, nil, "not valid UTF-8")
	}
	if strings.ContainsAny(s, "<>()\" \t") {
		if addr, perr := mail.ParseAddress(s); perr == nil && addr.Address != s {
			return "", "", emailErr(raw, nil, "only a bare address is accepted; pass %q", addr.Address)
		}
	}
	if strings.HasPrefix(strings.ToLower(s), "mailto:") {
		return "", "", emailErr(raw, nil, "mailto: prefix is not accepted; pass the bare address")
	}
	if n := strings.Count(s, "@"); n != 1 {
		return "", "", emailErr(raw, nil, "must contain exactly one '@', found %d", n)
	}
	local, host, _ := strings.Cut(s, "@")
	if err := checkLocal(local); err != "" {
		return "", "", emailErr(raw, nil, "local part: %s", err)
	}
	if host == "" {
		return "", "", emailErr(raw, ErrEmpty, "empty domain part")
	}
	if strings.HasPrefix(host, "[") {
		return "", "", emailErr(raw, ErrIPAddress, "address literals such as %s are not accepted", host)
	}
	d, derr := canonicalHost(host, host)
	if derr != nil {
		return "", "", emailErr(raw, derr.Err, "domain part: %s", derr.Reason)
	}
	email = strings.ToLower(local) + "@" + d
	if len(email) > maxEmailLen {
		return "", "", emailErr(raw, nil, "address is %d octets long, more than %d", len(email), maxEmailLen)
	}
	return email, d, nil
}

// checkLocal validates a dot-atom local part and returns a reason, or "" if valid.
func checkLocal(local string) string {
	switch {
	case local == "":
		return "empty"
	case len(local) > maxLocalLen:
		return fmt.Sprintf("%d octets long, more than %d", len(local), maxLocalLen)
	case local[0] == '.' || local[len(local)-1] == '.':
		return "starts or ends with a dot"
	case strings.Contains(local, ".."):
		return "contains two dots in a row"
	}
	for _, r := range local {
		if r < utf8.RuneSelf {
			if !isAtext(byte(r)) && r != '.' {
				return fmt.Sprintf("invalid character %q", r)
			}
			continue
		}
		if !unicode.IsGraphic(r) || unicode.IsSpace(r) {
			return fmt.Sprintf("invalid character %q", r)
		}
	}
	return ""
}

// isAtext reports whether c is RFC 5322 atext.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
