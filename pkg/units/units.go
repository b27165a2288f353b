// Package units parses the three kinds of values pathcost's command lines take — durations,
// sizes and rates — one way, with one error text, for every entry point (tcpload's subcommands,
// the e2e suites' flags). Each kind has a parser (ParseDuration, ParseSize, ParseRate) and a
// flag.Value (Duration, Size, Rate) that converts from a pointer to the plain Go type:
//
//	fs.Var((*units.Duration)(&cfg.Window), "duration", "length of the window")
//	units.DurationVar(flag.CommandLine, &window, "duration", 3*time.Second, "length of the window")
package units

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxSeconds bounds a duration given as a bare number of seconds (about 11.6 days).
const MaxSeconds = 1e6

// ParseDuration accepts Go durations (1.5s, 2m, 500ms) and bare numbers of seconds (10, 0.5).
// Negative values parse; the caller's range check names the flag.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if v, err := strconv.ParseFloat(t, 64); err == nil {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > MaxSeconds {
			return 0, fmt.Errorf("%q is not a usable number of seconds", s)
		}
		return time.Duration(v * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (examples: 10, 10s, 1m30s, 500ms)", s)
	}
	return d, nil
}

// ParseSize parses a byte count: a whole number with an optional k, M or G suffix (powers of
// 1024, as iperf3; case-insensitive), e.g. 102400, 100k, 4M. It is at most math.MaxInt32.
// Negative values parse; the caller's range check names the flag.
func ParseSize(s string) (int, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult, t = 1<<10, t[:n-1]
		case 'm':
			mult, t = 1<<20, t[:n-1]
		case 'g':
			mult, t = 1<<30, t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size (examples: 102400, 100k, 4M)", s)
	}
	if v < 0 {
		if v < math.MinInt32 {
			return 0, fmt.Errorf("%q is too small", s)
		}
		return int(v), nil
	}
	if v > math.MaxInt32/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int(v * mult), nil
}

// MaxRate is the largest rate ParseRate accepts, in bytes per second.
const MaxRate = math.MaxUint32

// ParseRate parses a rate into bytes per second: a number with an optional k, M or G suffix
// (powers of 1000), in bytes per second, optionally written with a "B/s" suffix; or in bits
// per second when it ends in "bit", "bit/s" or "bps" (case-insensitive): 10M = 10MB/s = 10 MB/s,
// 80Mbit = 10 MB/s, 4mbps = 0.5 MB/s. A lower-case "b/s" is refused as ambiguous. 0 means
// unpaced; negative rates and rates above MaxRate are errors.
func ParseRate(s string) (float64, error) {
	t := strings.TrimSpace(s)
	bits := false
	switch low := strings.ToLower(t); {
	case strings.HasSuffix(t, "B/s"):
		t = strings.TrimSuffix(t, "B/s")
	case strings.HasSuffix(t, "b/s") && !strings.HasSuffix(low, "bit/s"):
		return 0, fmt.Errorf("%q: b/s is ambiguous; write B/s for bytes or bit/s for bits per second", s)
	default:
		for _, suf := range []string{"bit/s", "bit", "bps"} {
			if strings.HasSuffix(low, suf) {
				bits, t = true, t[:len(t)-len(suf)]
				break
			}
		}
	}
	t = strings.ToLower(t)
	mult := 1.0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult, t = 1e3, t[:n-1]
		case 'm':
			mult, t = 1e6, t[:n-1]
		case 'g':
			mult, t = 1e9, t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a rate (examples: 500k = 500 kB/s, 40Mbit = 5 MB/s)", s)
	}
	v *= mult
	if bits {
		v /= 8
	}
	if v < 0 {
		return 0, fmt.Errorf("%q: a rate must not be negative", s)
	}
	if v > MaxRate {
		return 0, fmt.Errorf("%q: at most 4 GB/s per connection", s)
	}
	return v, nil
}

// Duration is a time.Duration as a flag.Value parsed by ParseDuration.
type Duration time.Duration

// String prints the duration in Go syntax.
func (d *Duration) String() string {
	if d == nil {
		return "0s"
	}
	return time.Duration(*d).String()
}

// Set parses s with ParseDuration.
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Get returns the time.Duration (flag.Getter).
func (d *Duration) Get() any { return time.Duration(*d) }

// Size is a byte count as a flag.Value parsed by ParseSize.
type Size int

// String prints the number of bytes.
func (z *Size) String() string {
	if z == nil {
		return "0"
	}
	return strconv.Itoa(int(*z))
}

// Set parses s with ParseSize.
func (z *Size) Set(s string) error {
	v, err := ParseSize(s)
	if err != nil {
		return err
	}
	*z = Size(v)
	return nil
}

// Get returns the int (flag.Getter).
func (z *Size) Get() any { return int(*z) }

// Rate is a rate in bytes per second as a flag.Value parsed by ParseRate.
type Rate float64

// String prints the bytes per second.
func (r *Rate) String() string {
	if r == nil {
		return "0"
	}
	return strconv.FormatFloat(float64(*r), 'g', -1, 64)
}

// Set parses s with ParseRate.
func (r *Rate) Set(s string) error {
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = Rate(v)
	return nil
}

// Get returns the float64 bytes per second (flag.Getter).
func (r *Rate) Get() any { return float64(*r) }

// DurationVar defines a duration flag on fs with a default, stored in p.
func DurationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*Duration)(p), name, usage)
}

// SizeVar defines a size flag on fs with a default, stored in p.
func SizeVar(fs *flag.FlagSet, p *int, name string, value int, usage string) {
	*p = value
	fs.Var((*Size)(p), name, usage)
}

// RateVar defines a rate flag (bytes per second) on fs with a default, stored in p.
func RateVar(fs *flag.FlagSet, p *float64, name string, value float64, usage string) {
	*p = value
	fs.Var((*Rate)(p), name, usage)
}
