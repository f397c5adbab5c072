package portal

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cron is a parsed standard 5-field cron schedule:
//
//	minute hour day-of-month month day-of-week
//
// Each field takes "*", a value, a range "a-b", a step "*/n" or "a-b/n" or "a/n",
// and comma-separated lists of these. Months take JAN-DEC, weekdays SUN-SAT
// (0 and 7 are both Sunday). As in Vixie cron, when both day-of-month and
// day-of-week are restricted, a day matching either one qualifies. The macros
// @yearly (@annually), @monthly, @weekly, @daily (@midnight) and @hourly are accepted.
type Cron struct {
	expr                          string
	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	domAny, dowAny                bool   // the field was "*" (or "*/n")
}

type cronField struct {
	name     string
	min, max int
	names    map[string]int
}

var cronFields = [5]cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day-of-month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: map[string]int{
		"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6,
		"JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12,
	}},
	{name: "day-of-week", min: 0, max: 7, names: map[string]int{
		"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6,
	}},
}

var cronMacros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// ParseCron parses a 5-field cron expression or macro.
func ParseCron(expr string) (*Cron, error) {
	spec := strings.TrimSpace(expr)
	if strings.HasPrefix(spec, "@") {
		m, ok := cronMacros[strings.ToLower(spec)]
		if !ok {
			return nil, fmt.Errorf("cron %q: unknown macro; use @yearly, @monthly, @weekly, @daily or @hourly", expr)
		}
		spec = m
	}
	fields := strings.Fields(spec)
	if len(fields) != 5 {
		return nil, fmt.Errorf("cron %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", expr, len(fields))
	}
	c := &Cron{expr: expr}
	sets := [5]*uint64{&c.minute, &c.hour, &c.dom, &c.month, &c.dow}
	for i, f := range fields {
		bits, err := cronFields[i].parse(f)
		if err != nil {
			return nil, fmt.Errorf("cron %q: %s: %w", expr, cronFields[i].name, err)
		}
		*sets[i] = bits
	}
	c.domAny = strings.HasPrefix(fields[2], "*")
	c.dowAny = strings.HasPrefix(fields[4], "*")
	if c.dow&(1<<7) != 0 { // 7 is Sunday too
		c.dow = c.dow&^(1<<7) | 1
	}
	if !c.domAny && c.dowAny && !c.possibleDay() {
		return nil, fmt.Errorf("cron %q: day-of-month never occurs in the chosen months", expr)
	}
	return c, nil
}

// possibleDay reports whether some chosen day-of-month exists in some chosen month.
func (c *Cron) possibleDay() bool {
	daysIn := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	for m := 1; m <= 12; m++ {
		if c.month&(1<<m) == 0 {
			continue
		}
		for d := 1; d <= daysIn[m]; d++ {
			if c.dom&(1<<d) != 0 {
				return true
			}
		}
	}
	return false
}

func (f cronField) parse(s string) (uint64, error) {
	var bits uint64
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			return 0, fmt.Errorf("empty list item in %q", s)
		}
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 || n > f.max-f.min+1 {
				return 0, fmt.Errorf("step %q must be a number from 1 to %d", stepStr, f.max-f.min+1)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = f.value(a); err != nil {
				return 0, err
			}
			if hi, err = f.value(b); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			v, err := f.value(rng)
			if err != nil {
				return 0, err
			}
			lo = v
			if !hasStep { // "a/n" means a through the maximum, every n
				hi = v
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

func (f cronField) value(s string) (int, error) {
	if v, ok := f.names[strings.ToUpper(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%d is out of range %d-%d", v, f.min, f.max)
	}
	return v, nil
}

// String returns the expression as written.
func (c *Cron) String() string { return c.expr }

// Next returns the first time strictly after t that the schedule matches, in
// t's location (pass now.In(loc)). The schedule is matched against the wall
// clock, which only moves forwards:
//   - a wall-clock time that the spring DST change skips runs at the matching
//     instant after the change (02:30 on the night Berlin jumps from 02:00 to
//     03:00 runs at 03:30 CEST), so a nightly job is not lost;
//   - an hour that the autumn change repeats is not run twice (a nightly
//     "0 2 * * *" in Europe/Berlin runs once on the night the clocks go back).
//
// The zero Time is returned if nothing matches within five years.
func (c *Cron) Next(t time.Time) time.Time {
	loc := t.Location()
	w := wallClock(t).Add(time.Minute) // the wall clock, as a zone-free UTC time
	limit := w.Year() + 5
	for w.Year() <= limit {
		switch {
		case c.month&(1<<uint(w.Month())) == 0:
			w = time.Date(w.Year(), w.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !c.dayMatches(w):
			w = time.Date(w.Year(), w.Month(), w.Day()+1, 0, 0, 0, 0, time.UTC)
		case c.hour&(1<<uint(w.Hour())) == 0:
			w = w.Truncate(time.Hour).Add(time.Hour)
		case c.minute&(1<<uint(w.Minute())) == 0:
			w = w.Add(time.Minute)
		default:
			at := firstOccurrence(w, loc)
			if at.After(t) {
				return at
			}
			// A repeated wall-clock time resolved to its first occurrence, which
			// has passed: move on.
			w = w.Add(time.Minute)
		}
	}
	return time.Time{}
}

// firstOccurrence returns the first instant at which loc's wall clock shows w.
// time.Date may resolve a wall-clock time that the autumn DST change repeats to
// its second occurrence.
func firstOccurrence(w time.Time, loc *time.Location) time.Time {
	at := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), 0, 0, loc)
	_, off := at.Zone()
	_, offBefore := at.Add(-3 * time.Hour).Zone()
	if offBefore > off {
		earlier := at.Add(-time.Duration(offBefore-off) * time.Second)
		if wallClock(earlier).Equal(w) {
			return earlier
		}
	}
	return at
}

// wallClock returns t's local date and time to the minute as a UTC time, so that
// wall-clock times can be stepped and compared without DST changes.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC)
}

func (c *Cron) dayMatches(t time.Time) bool {
	domOK := c.dom&(1<<uint(t.Day())) != 0
	dowOK := c.dow&(1<<uint(t.Weekday())) != 0
	if c.domAny || c.dowAny {
		return domOK && dowOK
	}
	return domOK || dowOK
}

// NextRun returns the next score-sync run strictly after t, evaluated in the
// configured time zone.
func (s ScoreSync) NextRun(t time.Time) (time.Time, error) {
	c, err := ParseCron(s.Schedule)
	if err != nil {
		return time.Time{}, err
	}
	return c.Next(t.In(s.Location())), nil
}
