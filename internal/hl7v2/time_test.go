package hl7v2

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	plus2 := time.FixedZone("", 2*3600)
	minus0530 := time.FixedZone("", -(5*3600 + 30*60))
	tests := []struct {
		in   string
		want time.Time
		p    Precision
	}{
		{"2024", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), PrecisionYear},
		{"202402", time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), PrecisionMonth},
		{"20240229", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), PrecisionDay},
		{"2024022913", time.Date(2024, 2, 29, 13, 0, 0, 0, time.UTC), PrecisionHour},
		{"202402291307", time.Date(2024, 2, 29, 13, 7, 0, 0, time.UTC), PrecisionMinute},
		{"20240229130759", time.Date(2024, 2, 29, 13, 7, 59, 0, time.UTC), PrecisionSecond},
		{"20240229130759.1", time.Date(2024, 2, 29, 13, 7, 59, 100_000_000, time.UTC), PrecisionDecisecond},
		{"20240229130759.12", time.Date(2024, 2, 29, 13, 7, 59, 120_000_000, time.UTC), PrecisionCentisecond},
		{"20240229130759.123", time.Date(2024, 2, 29, 13, 7, 59, 123_000_000, time.UTC), PrecisionMillisecond},
		{"20240229130759.1234", time.Date(2024, 2, 29, 13, 7, 59, 123_400_000, time.UTC), PrecisionTenthMillisecond},
		{"20240229130759+0200", time.Date(2024, 2, 29, 13, 7, 59, 0, plus2), PrecisionSecond},
		{"20240229130759.5-0530", time.Date(2024, 2, 29, 13, 7, 59, 500_000_000, minus0530), PrecisionDecisecond},
		{"202402291307-0000", time.Date(2024, 2, 29, 13, 7, 0, 0, time.UTC), PrecisionMinute},
		{"20240229+0200", time.Date(2024, 2, 29, 0, 0, 0, 0, plus2), PrecisionDay},
		{"19991231235959", time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), PrecisionSecond},
	}
	for _, tt := range tests {
		got, p, err := ParseTime(tt.in)
		if err != nil {
			t.Errorf("ParseTime(%q): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) || p != tt.p {
			t.Errorf("ParseTime(%q) = %v, %v; want %v, %v", tt.in, got, p, tt.want, tt.p)
		}
		_, off := got.Zone()
		_, wantOff := tt.want.Zone()
		if off != wantOff {
			t.Errorf("ParseTime(%q) offset = %d, want %d", tt.in, off, wantOff)
		}
	}
}

func TestParseTimeErrors(t *testing.T) {
	for _, in := range []string{
		"", "20", "202", "2024021", "20240230", "20241301", "20240001", "2024010125",
		"202401011260", "20240101120060", "20240101120000.", "20240101120000.12345",
		"202401011200.5", "2024-01-01", "20240101+02", "20240101+0260", "20240101+1500",
		"20240101120000Z", " 20240101", "2024010112000a",
	} {
		if _, _, err := ParseTime(in); !errors.Is(err, ErrBadTime) {
			t.Errorf("ParseTime(%q) error = %v, want ErrBadTime", in, err)
		}
	}
}

func TestParseTimeIn(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	got, _, err := ParseTimeIn("20240701120000", ams)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 7, 1, 10, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// An explicit offset wins over the assumed zone.
	got, _, _ = ParseTimeIn("20240701120000+0000", ams)
	if want := time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestFormatTime(t *testing.T) {
	ts := time.Date(2024, 2, 29, 13, 7, 59, 123_400_000, time.FixedZone("", -5*3600))
	tests := []struct {
		p    Precision
		want string
	}{
		{PrecisionYear, "2024"},
		{PrecisionDay, "20240229"},
		{PrecisionMinute, "202402291307-0500"},
		{PrecisionSecond, "20240229130759-0500"},
		{PrecisionMillisecond, "20240229130759.123-0500"},
		{PrecisionTenthMillisecond, "20240229130759.1234-0500"},
	}
	for _, tt := range tests {
		got := FormatTime(ts, tt.p)
		if got != tt.want {
			t.Errorf("FormatTime(%v) = %q, want %q", tt.p, got, tt.want)
		}
		back, p, err := ParseTime(got)
		if err != nil || p != tt.p {
			t.Errorf("ParseTime(FormatTime) = %v, %v, %v", back, p, err)
		}
	}
}

// TestParseTimeZones checks every offset ParseTime accepts against
// time.FixedZone, the cached quarter hours and the uncached odd minutes
// alike, from several goroutines at once (for the race detector).
func TestParseTimeZones(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for h := 0; h <= 14; h++ {
				for m := 0; m <= 59; m++ {
					for _, sign := range []int{1, -1} {
						in := fmt.Sprintf("202402291307%c%02d%02d", "+-"[(1-sign)/2], h, m)
						got, _, err := ParseTime(in)
						if err != nil {
							t.Errorf("ParseTime(%q): %v", in, err)
							return
						}
						want := time.Date(2024, 2, 29, 13, 7, 0, 0, time.FixedZone("", sign*(h*3600+m*60)))
						name, off := got.Zone()
						wname, woff := want.Zone()
						wantOut := strings.Replace(in, "-0000", "+0000", 1)
						if !got.Equal(want) || off != woff || name != wname || FormatTime(got, PrecisionMinute) != wantOut {
							t.Errorf("ParseTime(%q) = %v (zone %q %d), want %v (zone %q %d)", in, got, name, off, want, wname, woff)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	a, _, _ := ParseTime("20240229+0545")
	b, _, _ := ParseTime("19991231235959-0545")
	c, _, _ := ParseTime("19991231235959+0545")
	if a.Location() != c.Location() || a.Location() == b.Location() {
		t.Error("zones not shared per offset")
	}
	if n := testing.AllocsPerRun(100, func() {
		_, _, _ = ParseTime("198808181126+0215")
		_, _, _ = ParseTime("20240229130759.1234-0930")
	}); n != 0 {
		t.Errorf("ParseTime with a quarter-hour offset: %v allocs, want 0", n)
	}
}
