package units

import (
	"flag"
	"io"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0", 0, true}, {"500k", 500e3, true}, {"10M", 10e6, true}, {"10MB/s", 10e6, true}, {"80Mbit", 10e6, true},
		{"80Mbit/s", 10e6, true}, {"4mbps", 0.5e6, true}, {"1G", 1e9, true}, {" 2k ", 2e3, true},
		{"-1", 0, false}, {"fast", 0, false}, {"NaN", 0, false}, {"5G", 0, false}, {"", 0, false},
		{"10Mb/s", 0, false}, {"10b/s", 0, false}, {"bit", 0, false},
	} {
		got, err := ParseRate(tc.in)
		if tc.ok {
			require.NoError(t, err, tc.in)
			assert.InDelta(t, tc.want, got, 1e-6, tc.in)
		} else {
			assert.Error(t, err, tc.in)
		}
	}
	_, err := ParseRate("10Mb/s")
	assert.ErrorContains(t, err, "ambiguous")
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"102400", 102400, true}, {"100k", 102400, true}, {"4M", 4 << 20, true}, {"1g", 1 << 30, true},
		{"-1", -1, true}, {"x", 0, false}, {"99999999999", 0, false}, {"-99999999999", 0, false}, {"", 0, false},
		{"2G", 0, false}, {"1.5k", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if tc.ok {
			require.NoError(t, err, tc.in)
			assert.Equal(t, tc.want, got, tc.in)
		} else {
			assert.Error(t, err, tc.in)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10", 10 * time.Second, true}, {"0.5", 500 * time.Millisecond, true}, {"1m30s", 90 * time.Second, true},
		{"2s", 2 * time.Second, true}, {"-1s", -time.Second, true},
		{"soon", 0, false}, {"1e300", 0, false}, {"Inf", 0, false}, {"", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if tc.ok {
			require.NoError(t, err, tc.in)
			assert.Equal(t, tc.want, got, tc.in)
		} else {
			assert.Error(t, err, tc.in)
		}
	}
}

// The flag.Values parse like the parsers, keep the default until set, and fail with the
// parser's error text.
func TestFlagValues(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var d time.Duration
	var z int
	var r float64
	DurationVar(fs, &d, "duration", 3*time.Second, "")
	SizeVar(fs, &z, "buffer", 102400, "")
	RateVar(fs, &r, "rate", 0, "")
	assert.Equal(t, "3s", fs.Lookup("duration").DefValue)
	assert.Equal(t, "102400", fs.Lookup("buffer").DefValue)
	require.NoError(t, fs.Parse([]string{"-duration", "2", "-buffer", "16k", "-rate", "40Mbit"}))
	assert.Equal(t, 2*time.Second, d)
	assert.Equal(t, 16384, z)
	assert.InDelta(t, 5e6, r, 1e-9)
	assert.Equal(t, 2*time.Second, fs.Lookup("duration").Value.(flag.Getter).Get())

	err := fs.Parse([]string{"-duration", "soon"})
	_, perr := ParseDuration("soon")
	assert.ErrorContains(t, err, perr.Error())

	var nilD *Duration
	var nilZ *Size
	var nilR *Rate
	assert.Equal(t, "0s", nilD.String())
	assert.Equal(t, "0", nilZ.String())
	assert.Equal(t, "0", nilR.String())
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"0", "500k", "80Mbit", "4mbps", "1e9", "-3", "NaN", "bit", "10MB/s", "3b/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseRate(s)
		if err == nil && (v < 0 || v > MaxRate || math.IsNaN(v)) {
			t.Fatalf("ParseRate(%q) = %v without error", s, v)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"102400", "100k", "4M", "-1", "1g", "k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize(s)
		if err == nil && (v > math.MaxInt32 || v < math.MinInt32) {
			t.Fatalf("ParseSize(%q) = %d without error", s, v)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"10", "0.5", "1m30s", "-1s", "1e300"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseDuration(s)
		if err == nil && s != "" {
			if _, ferr := ParseDuration(v.String()); ferr != nil {
				t.Fatalf("ParseDuration(%q) = %v, which does not parse back: %v", s, v, ferr)
			}
		}
	})
}
