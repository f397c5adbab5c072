package natsx

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
)

func TestOneLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"line1\r\nline2", 100, "line1  line2"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // é is two bytes: cut before it, not inside it
	}
	for _, tt := range tests {
		got := oneLine(tt.in, tt.n)
		if got != tt.want || !utf8.ValidString(got) || strings.ContainsAny(got, "\r\n") {
			t.Errorf("oneLine(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestWithoutNatsHeaders(t *testing.T) {
	t.Parallel()
	in := nats.Header{
		"Nats-Msg-Id":          {"a"},
		"Nats-Batch-Id":        {"b"},
		"nats-expected-stream": {"S"},
		"traceparent":          {"tp"},
		"Sb-Event-Type":        {"x"},
	}
	out := withoutNatsHeaders(in)
	if len(out) != 2 || out.Get("traceparent") != "tp" || out.Get("Sb-Event-Type") != "x" {
		t.Fatalf("withoutNatsHeaders = %v, want only traceparent and Sb-Event-Type", out)
	}
	out.Set("traceparent", "changed")
	if in.Get("traceparent") != "tp" {
		t.Fatal("withoutNatsHeaders shares values with its input")
	}
}

// A publish works on a copy of the caller's header: whatever is set, added
// or deleted on either side afterwards stays on that side.
func TestCloneHeaderKeepsBothSidesApart(t *testing.T) {
	t.Parallel()
	values := make([]string, 1, 4) // spare capacity: an append in place would show through
	values[0] = "a"
	orig := nats.Header{"K": values, "Gone": {"x"}}
	cp := cloneHeader(orig)

	cp.Add("K", "b")
	cp.Set("New", "n")
	cp.Del("Gone")
	orig.Add("K", "c")

	if got := strings.Join(orig["K"], ","); got != "a,c" {
		t.Errorf("original K = %q, want a,c", got)
	}
	if got := strings.Join(cp["K"], ","); got != "a,b" {
		t.Errorf("copy K = %q, want a,b", got)
	}
	if orig.Get("New") != "" || orig.Get("Gone") != "x" {
		t.Errorf("original changed by the copy's Set/Del: %v", orig)
	}
	if len(cloneHeader(nil)) != 0 {
		t.Error("cloneHeader(nil) is not empty")
	}
}
