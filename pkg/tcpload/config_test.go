package tcpload

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{}.WithDefaults()
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"conns 0", func(c *Config) { c.Conns = 0 }, "Conns 0"},
		{"conns huge", func(c *Config) { c.Conns = MaxConns + 1 }, "Conns"},
		{"buffer -1", func(c *Config) { c.Buffer = -1 }, "Buffer -1"},
		{"duration 0", func(c *Config) { c.Duration = 0 }, "Duration"},
		{"warmup negative", func(c *Config) { c.Warmup = -1 }, "Warmup"},
		{"interval 0", func(c *Config) { c.Interval = 0 }, "Interval"},
		{"receiver delay negative", func(c *Config) { c.ReceiverDelay = -1 }, "ReceiverDelay -1ns"},
		{"receiver delay longer than the warm-up", func(c *Config) { c.Warmup, c.ReceiverDelay = time.Second, 2*time.Second }, "ReceiverDelay 2s: longer than Warmup 1s"},
		{"receiver delay beyond the header's", func(c *Config) { c.Warmup, c.ReceiverDelay = 2*time.Minute, time.Minute+1 }, "want 0..1m0s"},
		{"rate and msgs", func(c *Config) { c.Pace = Pace{RateBytes: 1, MsgsPerSec: 1, MsgBytes: 1} }, "exclude"},
		{"msgs without size", func(c *Config) { c.Pace = Pace{MsgsPerSec: 20} }, "Pace.MsgBytes"},
		{"msg larger than buffer", func(c *Config) { c.Pace = Pace{MsgsPerSec: 20, MsgBytes: c.Buffer + 1} }, "larger than Buffer"},
		{"bad direction", func(c *Config) { c.Direction = "sideways" }, "Direction"},
		{"msgs NaN", func(c *Config) { c.Pace = Pace{MsgsPerSec: math.NaN(), MsgBytes: 10} }, "Pace.MsgsPerSec"},
		{"rate Inf", func(c *Config) { c.Pace = Pace{RateBytes: math.Inf(1)} }, "Pace.RateBytes"},
		{"rate below a byte", func(c *Config) { c.Pace = Pace{RateBytes: 0.5} }, "Pace.RateBytes"},
		{"msgs too rare for the header", func(c *Config) { c.Pace = Pace{MsgsPerSec: 0.0001, MsgBytes: 10} }, "Pace.MsgsPerSec"},
		{"msg-size without msgs", func(c *Config) { c.Pace = Pace{MsgBytes: 10} }, "Pace.MsgBytes 10: goes with Pace.MsgsPerSec"},
		{"negative setup timeout", func(c *Config) { c.SetupTimeout = -time.Second }, "SetupTimeout"},
		{"negative accept timeout", func(c *Config) { c.AcceptTimeout = -time.Second }, "AcceptTimeout"},
		{"notsent lowat below the kernel's", func(c *Config) { c.Options.NotSentLowat = -2 }, "Options.NotSentLowat -2"},
		{"read batch below none", func(c *Config) { c.ReadBatch = NoReadBatch - 1 }, "ReadBatch -2ns"},
		{"read batch beyond its bound", func(c *Config) { c.ReadBatch = MaxReadBatch + 1 }, "ReadBatch 1.000001ms: want 0 (50µs), NoReadBatch (none) or up to 1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := header{Direction: ClientPush, Conns: 100, Index: 99, Duration: 10 * time.Second, Warmup: 2 * time.Second, Pace: Pace{MsgsPerSec: 20, MsgBytes: 25000}, ReceiverDelay: 100 * time.Millisecond}
	b := h.encode()
	got, err := decodeHeader(b[:])
	require.NoError(t, err)
	assert.Equal(t, h, got)
	for _, tc := range []struct {
		name string
		mod  func(b []byte)
		want string
	}{
		{"magic", func(b []byte) { b[0] = 'G' }, "magic"},
		{"version", func(b []byte) { b[4] = 9 }, "version"},
		{"direction", func(b []byte) { b[5] = 7 }, "direction"},
		{"index out of range", func(b []byte) { b[15] = 200 }, "index"},
		{"zero conns", func(b []byte) { copy(b[8:12], []byte{0, 0, 0, 0}) }, "connections"},
		{"receiver delay beyond the warm-up", func(b []byte) { b[6], b[7] = 0xff, 0xff }, "receiver delay 1m5.535s longer than the warm-up 2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := b
			tc.mod(c[:])
			_, err := decodeHeader(c[:])
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func FuzzDecodeHeader(f *testing.F) {
	b := header{Direction: ServerPush, Conns: 100, Index: 3, Duration: time.Second}.encode()
	f.Add(b[:])
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n12345678"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeHeader(data)
		if err != nil {
			return
		}
		if h.Conns < 1 || h.Conns > MaxConns || h.Index >= h.Conns || h.Pace.Validate() != nil {
			t.Fatalf("decoded an invalid header without error: %+v", h)
		}
		re := h.encode()
		h2, err := decodeHeader(re[:])
		if err != nil || h2.Conns != h.Conns || h2.Direction != h.Direction {
			t.Fatalf("round trip of %+v: %+v, %v", h, h2, err)
		}
	})
}

func TestFieldErrorRendersFlags(t *testing.T) {
	c := Config{}.WithDefaults()
	c.Pace = Pace{MsgsPerSec: 20, MsgBytes: c.Buffer + 1}
	err := c.Validate()
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "Pace.MsgBytes", fe.Field)
	flags := map[string]string{"Pace.MsgBytes": "--msg-size", "Buffer": "--buffer"}
	assert.Equal(t, "--msg-size 102401: larger than --buffer 102400", fe.Render(func(f string) string { return flags[f] }))
	assert.Equal(t, "Pace.MsgBytes 102401: larger than Buffer 102400", err.Error())
}

func TestNotSentLowat(t *testing.T) {
	for _, tc := range []struct {
		name                string
		asked, buffer, want int
	}{
		{"default: two buffers", 0, 102400, 204800},
		{"default follows the buffer", 0, 200000, 400000},
		{"default at least MinAutoNotSentLowat", 0, 16384, MinAutoNotSentLowat},
		{"asked", 65536, 102400, 65536},
		{"the kernel's: not set", KernelNotSentLowat, 102400, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Options{NotSentLowat: tc.asked}.notSentLowat(tc.buffer))
		})
	}
}

func TestReadNap(t *testing.T) {
	for _, tc := range []struct {
		name        string
		asked, want time.Duration
	}{
		{"default", 0, DefaultReadBatch},
		{"none: woken per socket", NoReadBatch, 0},
		{"asked", 200 * time.Microsecond, 200 * time.Microsecond},
		{"the bound", MaxReadBatch, MaxReadBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{ReadBatch: tc.asked}.WithDefaults()
			require.NoError(t, c.Validate())
			assert.Equal(t, tc.want, c.readNap())
		})
	}
}
