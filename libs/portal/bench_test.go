package portal

import (
	"os"
	"testing"
)

func BenchmarkParseDemo(b *testing.B) {
	demo, err := os.ReadFile("testdata/demo-portal.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Parse(demo); err != nil {
			b.Fatal(err)
		}
	}
}
