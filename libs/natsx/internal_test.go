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
