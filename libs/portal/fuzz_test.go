package portal

import (
	"errors"
	"os"
	"reflect"
	"testing"
	"time"
)

// FuzzParse: Parse never panics; it returns a config or a *ValidationError with
// at least one problem; an accepted config survives Marshal → Parse unchanged.
func FuzzParse(f *testing.F) {
	demo, err := os.ReadFile("testdata/demo-portal.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo)
	f.Add([]byte(minimalYAML))
	f.Add([]byte(minimalYAML + "score_sync:\n  schedule: \"*/7 1-5/2 L * MON\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error %v is not a *ValidationError with problems", err)
			}
			return
		}
		b, err := Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(Marshal(cfg)): %v\n%s", err, b)
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("round trip changed the config:\n%s", b)
		}
	})
}

// FuzzCron: ParseCron never panics, and Next of an accepted schedule moves forwards.
func FuzzCron(f *testing.F) {
	for _, s := range []string{"0 2 * * *", "*/15 9-17 * * MON-FRI", "0 0 29 2 *", "@weekly", "5/10 1,3 1-31/3 JAN-DEC/2 0-7"} {
		f.Add(s)
	}
	from := time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		c, err := ParseCron(expr)
		if err != nil {
			return
		}
		next := c.Next(from)
		if !next.IsZero() && !next.After(from) {
			t.Fatalf("Next(%s) = %s for %q", from, next, expr)
		}
	})
}
