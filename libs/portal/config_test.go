package portal

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationFormat(t *testing.T) {
	t.Parallel()
	cases := map[time.Duration]string{
		time.Hour:                  "1h",
		24 * time.Hour:             "24h",
		90 * time.Minute:           "1h30m",
		5 * time.Minute:            "5m",
		90 * time.Second:           "1m30s",
		time.Hour + 30*time.Second: "1h0m30s",
		1500 * time.Millisecond:    "1.5s",
	}
	for d, want := range cases {
		b, err := json.Marshal(NewDuration(d))
		if err != nil || string(b) != `"`+want+`"` {
			t.Errorf("json(%v) = %s, %v; want %q", d, b, err, want)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back.Duration != d {
			t.Errorf("json round trip of %v = %v, %v", d, back.Duration, err)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Error("json accepted a bad duration")
	}
}
