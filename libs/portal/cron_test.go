package portal

import (
	"strings"
	"testing"
	"time"
)

func TestParseCronErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ expr, want string }{
		{"", "want 5 fields"},
		{"0 2 * *", "want 5 fields (minute hour day-of-month month day-of-week), got 4"},
		{"60 * * * *", "minute: 60 is out of range 0-59"},
		{"0 24 * * *", "hour: 24 is out of range 0-23"},
		{"0 0 0 * *", "day-of-month: 0 is out of range 1-31"},
		{"0 0 32 * *", "day-of-month: 32 is out of range 1-31"},
		{"0 0 * 13 *", "month: 13 is out of range 1-12"},
		{"0 0 * * 8", "day-of-week: 8 is out of range 0-7"},
		{"0 0 * FOO *", `month: "FOO" is not a number`},
		{"*/0 * * * *", `minute: step "0" must be a number from 1 to 60`},
		{"*/x * * * *", `minute: step "x" must be a number from 1 to 60`},
		{"10-5 * * * *", `minute: range "10-5" runs backwards`},
		{"1,,2 * * * *", "minute: empty list item"},
		{"0 0 30 2 *", "day-of-month never occurs in the chosen months"},
		{"@reboot", "unknown macro"},
		{"@every 5m", "unknown macro"},
	}
	for _, c := range cases {
		_, err := ParseCron(c.expr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseCron(%q) error = %v, want it to contain %q", c.expr, err, c.want)
		}
	}
}

func TestCronNext(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	at := func(loc *time.Location, s string) time.Time {
		t.Helper()
		v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name, expr string
		loc        *time.Location
		from, want string
	}{
		{"nightly, later today", "0 2 * * *", berlin, "2026-03-10 01:00", "2026-03-10 02:00"},
		{"nightly, strictly after", "0 2 * * *", berlin, "2026-03-10 02:00", "2026-03-11 02:00"},
		{"every 15 minutes", "*/15 * * * *", time.UTC, "2026-01-01 10:07", "2026-01-01 10:15"},
		{"list and range", "5,35 9-17 * * *", time.UTC, "2026-01-01 17:40", "2026-01-02 09:05"},
		{"weekdays by name", "30 8 * * MON-FRI", time.UTC, "2026-01-02 09:00", "2026-01-05 08:30"}, // Fri → Mon
		{"sunday as 7", "0 12 * * 7", time.UTC, "2026-01-01 00:00", "2026-01-04 12:00"},
		{"dom or dow when both restricted", "0 0 13 * FRI", time.UTC, "2026-01-01 00:00", "2026-01-02 00:00"}, // Fri 2nd before the 13th
		{"month by name", "0 0 1 JUL *", time.UTC, "2026-08-01 00:00", "2027-07-01 00:00"},
		{"leap day", "0 0 29 2 *", time.UTC, "2026-03-01 00:00", "2028-02-29 00:00"},
		{"31st skips short months", "0 0 31 * *", time.UTC, "2026-04-01 00:00", "2026-05-31 00:00"},
		{"step from a value", "10/20 * * * *", time.UTC, "2026-01-01 10:31", "2026-01-01 10:50"},
		{"macro daily", "@daily", time.UTC, "2026-01-01 00:00", "2026-01-02 00:00"},
		{"macro hourly", "@hourly", time.UTC, "2026-01-01 00:30", "2026-01-01 01:00"},
		{"half-hour offset zone", "0 2 * * *", kolkata, "2026-01-01 03:00", "2026-01-02 02:00"},
		// 2026-03-29 Berlin: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that
		// day, and the run happens at the matching instant after the jump.
		{"spring forward runs after the gap", "30 2 * * *", berlin, "2026-03-29 00:00", "2026-03-29 03:30"},
		{"the day after spring forward", "30 2 * * *", berlin, "2026-03-29 03:30", "2026-03-30 02:30"},
		// 2026-11-01 New York: 01:00-02:00 happens twice; the job runs at the first 01:30.
		{"fall back", "30 1 * * *", newYork, "2026-11-01 00:00", "2026-11-01 01:30"},
	}
	for _, c := range cases {
		cr, err := ParseCron(c.expr)
		if err != nil {
			t.Fatalf("%s: ParseCron(%q): %v", c.name, c.expr, err)
		}
		got := cr.Next(at(c.loc, c.from))
		want := at(c.loc, c.want)
		if !got.Equal(want) {
			t.Errorf("%s: Next(%s) = %s, want %s", c.name, c.from, got, want)
		}
		if got.Location() != c.loc {
			t.Errorf("%s: Next returned location %s, want %s", c.name, got.Location(), c.loc)
		}
	}
}

func TestCronNextRunsOnceWhenClocksGoBack(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// 2026-10-25 Berlin: 03:00 CEST goes back to 02:00 CET, so 02:00-02:59 happens twice.
	cases := []struct {
		expr       string
		from       time.Time
		want       time.Time
		wantOffset int
	}{
		{"0 2 * * *", time.Date(2026, 10, 25, 0, 0, 0, 0, berlin), time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC), 2 * 3600},
		// From the first 02:00 (CEST) the next run is the next night, not the repeated 02:00 (CET).
		{"0 2 * * *", time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC).In(berlin), time.Date(2026, 10, 26, 1, 0, 0, 0, time.UTC), 3600},
		// Every 15 minutes: the repeated hour is skipped, then the schedule goes on.
		{"*/15 * * * *", time.Date(2026, 10, 25, 0, 45, 0, 0, time.UTC).In(berlin), time.Date(2026, 10, 25, 2, 0, 0, 0, time.UTC), 3600},
	}
	for _, c := range cases {
		cr, err := ParseCron(c.expr)
		if err != nil {
			t.Fatal(err)
		}
		got := cr.Next(c.from)
		if !got.Equal(c.want) {
			t.Errorf("%q Next(%s) = %s, want %s", c.expr, c.from, got, c.want.In(berlin))
		}
		if _, off := got.Zone(); off != c.wantOffset {
			t.Errorf("%q Next(%s) has offset %d, want %d", c.expr, c.from, off, c.wantOffset)
		}
	}
}

func TestScoreSyncNextRun(t *testing.T) {
	t.Parallel()
	s := ScoreSync{Schedule: "0 2 * * *", TimeZone: "Europe/Berlin"}
	// 2026-06-15 00:30 UTC is 02:30 CEST: the next 02:00 Berlin is 2026-06-16 00:00 UTC.
	got, err := s.NextRun(time.Date(2026, 6, 15, 0, 30, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 6, 16, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("NextRun = %s, want %s", got, want)
	}
	if _, err := (ScoreSync{Schedule: "nope"}).NextRun(time.Now()); err == nil {
		t.Error("NextRun with a bad schedule succeeded")
	}
}
