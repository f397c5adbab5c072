package main

import (
	"bytes"
	"testing"
	"time"
)

// The Go runtime's gctrace lines become spans (start from the process's
// start, wall time = both stop-the-world pauses and the concurrent mark),
// whatever the chunks they arrive in; other lines go on untouched.
func TestServerGCReadsGctraceLines(t *testing.T) {
	started := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	var rest bytes.Buffer
	g := newServerGC(started, &rest)
	input := "gc 1 @0.012s 1%: 0.020+1.5+0.030 ms clock, 0.040+0.1/1.2/0+0.060 ms cpu, 4->4->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P\n" +
		"[INF] a server log line\n" +
		"gc 47 @20.118s 2%: 0.061+47+0.008 ms clock, 0.12+0.5/23/45+0.016 ms cpu, 90->92->49 MB, 94 MB goal, 0 MB stacks, 0 MB globals, 2 P\n"
	for i := 0; i < len(input); i += 7 { // arbitrary chunks, as a pipe delivers them
		if _, err := g.Write([]byte(input[i:min(i+7, len(input))])); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := rest.String(), "[INF] a server log line\n"; got != want {
		t.Errorf("passed on %q, want %q", got, want)
	}
	all := g.during(span{from: started, to: started.Add(time.Minute)})
	if len(all) != 2 {
		t.Fatalf("read %d cycles, want 2: %+v", len(all), all)
	}
	wantFrom := started.Add(20118 * time.Millisecond)
	wantWall := 47069 * time.Microsecond
	if all[1].from != wantFrom || all[1].to.Sub(all[1].from) != wantWall {
		t.Errorf("cycle 47 = %s + %s, want %s + %s", all[1].from.Sub(started), all[1].to.Sub(all[1].from), wantFrom.Sub(started), wantWall)
	}

	// One slow request in flight during cycle 47, one long after it.
	phase := span{from: started.Add(20 * time.Second), to: started.Add(30 * time.Second)}
	slow := []span{
		{from: started.Add(20100 * time.Millisecond), to: started.Add(20150 * time.Millisecond)},
		{from: started.Add(25 * time.Second), to: started.Add(25040 * time.Millisecond)},
	}
	cycles, longest, inGC := gcSummary(g, phase, slow, 5*time.Millisecond)
	if cycles != 1 || longest != wantWall || inGC != 1 {
		t.Errorf("gcSummary = %d cycles, longest %s, %d in GC; want 1, %s, 1", cycles, longest, inGC, wantWall)
	}
}
