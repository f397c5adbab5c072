package main

import (
	"bytes"
	"io"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"
)

// serverGC reads the standard error of the NATS server process, started
// with GODEBUG=gctrace=1, and keeps the wall-clock span of each of its GC
// cycles; other lines go on to out. It lets the latency phases say how many
// of the slow requests were in flight while the server was collecting.
type serverGC struct {
	started time.Time // just before the process was started; gctrace times count from its start
	out     io.Writer

	mu      sync.Mutex
	partial []byte
	cycles  []span
}

// span is a wall-clock interval.
type span struct{ from, to time.Time }

func (s span) overlaps(o span) bool { return s.from.Before(o.to) && o.from.Before(s.to) }

// gctraceLine matches the start of a gctrace line: "gc 12 @3.456s 2%: 0.06+47+0.008 ms clock, ..."
// (cycle, seconds since the process started, then the wall time of the
// sweep termination, concurrent mark and mark termination).
var gctraceLine = regexp.MustCompile(`^gc \d+ @([0-9.]+)s \d+%: ([0-9.]+)\+([0-9.]+)\+([0-9.]+) ms clock`)

func newServerGC(started time.Time, out io.Writer) *serverGC {
	return &serverGC{started: started, out: out}
}

func (g *serverGC) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.partial = append(g.partial, p...)
	for {
		i := bytes.IndexByte(g.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := g.partial[:i+1]
		if c, ok := g.parse(line); ok {
			g.cycles = append(g.cycles, c)
		} else if _, err := g.out.Write(line); err != nil {
			return len(p), err
		}
		g.partial = g.partial[i+1:]
	}
}

func (g *serverGC) parse(line []byte) (span, bool) {
	m := gctraceLine.FindSubmatch(line)
	if m == nil {
		return span{}, false
	}
	var f [4]float64
	for i := range f {
		v, err := strconv.ParseFloat(string(m[i+1]), 64)
		if err != nil {
			return span{}, false
		}
		f[i] = v
	}
	from := g.started.Add(time.Duration(f[0] * float64(time.Second)))
	wall := time.Duration((f[1] + f[2] + f[3]) * float64(time.Millisecond))
	return span{from: from, to: from.Add(wall)}, true
}

// during returns the GC cycles that overlap s.
func (g *serverGC) during(s span) []span {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []span
	for _, c := range g.cycles {
		if c.overlaps(s) {
			out = append(out, c)
		}
	}
	return out
}

// gcSummary describes the server's GC during a phase and how many of the
// phase's slow requests were in flight during one of its cycles (within
// slack, for the few milliseconds between starting the process and its
// clock starting).
func gcSummary(g *serverGC, phase span, slow []span, slack time.Duration) (cycles int, longest time.Duration, inGC int) {
	cs := g.during(phase)
	for _, c := range cs {
		longest = max(longest, c.to.Sub(c.from))
	}
	for _, r := range slow {
		if slices.ContainsFunc(cs, func(c span) bool {
			return c.overlaps(span{from: r.from.Add(-slack), to: r.to.Add(slack)})
		}) {
			inGC++
		}
	}
	return len(cs), longest, inGC
}
