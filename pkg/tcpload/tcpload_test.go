//go:build linux

package tcpload

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// session runs one server and one client on loopback and returns both results.
func session(t *testing.T, cfg Config, srvCtx, cliCtx context.Context) (srv, cli *Result) {
	t.Helper()
	s, err := Listen("127.0.0.1:0", Config{Buffer: cfg.Buffer, Options: cfg.Options, ReadBatch: cfg.ReadBatch, SetupTimeout: 5 * time.Second})
	require.NoError(t, err)
	done := make(chan *Result, 1)
	go func() { done <- s.Serve(srvCtx) }()
	cli = RunClient(cliCtx, s.Addr().String(), cfg)
	select {
	case srv = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("server did not end within 15 s of the client")
	}
	return srv, cli
}

func TestSessionConservesBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  Direction
		cfg  Config
	}{
		{"server-push seed defaults", ServerPush, Config{Conns: 100}},
		{"client-push", ClientPush, Config{Conns: 20}},
		{"small buffer", ServerPush, Config{Conns: 5, Buffer: 1000}},
		{"sockopts", ServerPush, Config{Conns: 4, Options: Options{SndBuf: 65536, RcvBuf: 65536, NoDelay: true}}},
		{"notsent lowat asked", ServerPush, Config{Conns: 4, Options: Options{NotSentLowat: 65536}}},
		{"notsent lowat the kernel's", ServerPush, Config{Conns: 4, Options: Options{NotSentLowat: KernelNotSentLowat}}},
		{"receiver delay, client reads", ServerPush, Config{Conns: 10, ReceiverDelay: 100 * time.Millisecond}},
		{"receiver delay, server reads", ClientPush, Config{Conns: 10, ReceiverDelay: 100 * time.Millisecond}},
		{"reader woken per socket", ServerPush, Config{Conns: 10, ReadBatch: NoReadBatch}},
		{"longer read batch, server reads", ClientPush, Config{Conns: 10, ReadBatch: MaxReadBatch}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Direction = tc.dir
			cfg.Duration, cfg.Warmup, cfg.Interval = 800*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
			srv, cli := session(t, cfg, context.Background(), context.Background())
			require.NoError(t, srv.Err)
			require.NoError(t, cli.Err)
			assert.Equal(t, srv.TotalBytes, cli.TotalBytes, "what the sender wrote must equal what the receiver read")
			assert.Positive(t, cli.WindowBytes)
			assert.Positive(t, srv.WindowBytes)
			assert.Equal(t, cfg.Conns, srv.Conns, "the server learns the session size from the header")
			assert.Equal(t, tc.dir == ServerPush, srv.Sending)
			assert.Equal(t, tc.dir == ClientPush, cli.Sending)
			assert.InDelta(t, 0.8, cli.WindowSeconds, 0.15)
			assert.GreaterOrEqual(t, len(cli.Intervals), 3)
			assert.LessOrEqual(t, len(cli.Intervals), 5)
			assert.Positive(t, cli.PerConnMin, "every connection moved data")
			assert.GreaterOrEqual(t, cli.PerConnMax, cli.PerConnMin)
			assert.Less(t, cli.SetupSeconds, 2.0)
			var sum uint64
			for _, iv := range cli.Intervals {
				sum += iv.Bytes
			}
			assert.Equal(t, cli.WindowBytes, sum, "intervals add up to the window")
			for _, r := range []*Result{srv, cli} {
				if assert.NotNil(t, r.WindowRetransmits, "%s: window retransmits read", r.Role) {
					assert.LessOrEqual(t, *r.WindowRetransmits, r.Retransmits, "%s: the window's retransmits are part of the session's", r.Role)
				}
			}
			sender, receiver := srv, cli
			if tc.dir == ClientPush {
				sender, receiver = cli, srv
			}
			assert.Zero(t, sender.ReceiverWaited, "the sender never waits")
			if cfg.ReceiverDelay > 0 {
				assert.GreaterOrEqual(t, receiver.ReceiverWaited, cfg.ReceiverDelay, "the receiver (told by the header when it is the server) waited")
			} else {
				assert.Zero(t, receiver.ReceiverWaited)
			}
			assert.Zero(t, sender.ReadBatch, "the sender never naps")
			assert.Equal(t, cfg.readNap(), receiver.ReadBatch, "the receiver's nap")
			lowat := cfg.Options.notSentLowat(cmp.Or(cfg.Buffer, DefaultBuffer))
			assert.Equal(t, lowat, srv.Sockets.NotSentLowat, "the server's TCP_NOTSENT_LOWAT, read back from a session socket")
			assert.Equal(t, lowat, cli.Sockets.NotSentLowat, "the client's TCP_NOTSENT_LOWAT")
			if cfg.Options.SndBuf > 0 {
				assert.Equal(t, 2*cfg.Options.SndBuf, cli.Sockets.SndBufGranted, "the kernel doubles SO_SNDBUF")
				assert.True(t, cli.Sockets.NoDelay)
			}
		})
	}
}

func TestPacing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pace     Pace
		conns    int
		wantRate float64 // bytes/s over all connections
	}{
		{"business 20 msgs/s", Pace{MsgsPerSec: 20, MsgBytes: 5000}, 10, 20 * 5000 * 10},
		{"rate 200 kB/s", Pace{RateBytes: 200e3}, 5, 5 * 200e3},
		// messages larger than the socket buffer: every message is written in parts
		{"messages beyond the send buffer", Pace{MsgsPerSec: 20, MsgBytes: 60000}, 4, 20 * 60000 * 4},
		// more than one buffer per millisecond: the pacer must not cap it at a write per tick
		{"rate 40 MB/s with 16 kB buffers", Pace{RateBytes: 40e6}, 1, 40e6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Conns: tc.conns, Pace: tc.pace, Duration: 1500 * time.Millisecond, Warmup: 300 * time.Millisecond, Interval: 500 * time.Millisecond}
			if tc.pace.RateBytes >= 1e6 {
				cfg.Buffer = 16384
			}
			if tc.pace.MsgBytes > 50000 {
				cfg.Options.SndBuf, cfg.Options.RcvBuf = 8192, 8192
			}
			srv, cli := session(t, cfg, context.Background(), context.Background())
			require.NoError(t, srv.Err)
			require.NoError(t, cli.Err)
			got := float64(srv.WindowBytes) / srv.WindowSeconds
			assert.InEpsilon(t, tc.wantRate, got, 0.25, "paced rate %.0f B/s, want %.0f", got, tc.wantRate)
			assert.Equal(t, tc.pace, srv.Pace, "the server applies the pacing the client announced")
			assert.Equal(t, srv.TotalBytes, cli.TotalBytes)
		})
	}
}

func TestConnectRefusedGivesUpWithAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	start := time.Now()
	res := RunClient(context.Background(), addr, Config{Conns: 3, Duration: time.Second, SetupTimeout: 600 * time.Millisecond})
	require.Error(t, res.Err)
	assert.Contains(t, res.Err.Error(), addr)
	assert.Contains(t, res.Err.Error(), "refused")
	assert.Less(t, time.Since(start), 3*time.Second)
}

func TestClientRetriesUntilServerListens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	done := make(chan *Result, 1)
	go func() {
		done <- RunClient(context.Background(), addr, Config{Conns: 3, Duration: 300 * time.Millisecond, Warmup: 1, SetupTimeout: 5 * time.Second})
	}()
	time.Sleep(300 * time.Millisecond)
	s, err := Listen(addr, Config{})
	require.NoError(t, err)
	srv := s.Serve(context.Background())
	cli := <-done
	require.NoError(t, cli.Err)
	require.NoError(t, srv.Err)
	assert.Greater(t, cli.SetupSeconds, 0.2, "set-up time includes the retries")
}

func TestServerStopsEarlyClientReportsIt(t *testing.T) {
	srvCtx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(700*time.Millisecond, cancel)
	start := time.Now()
	srv, cli := session(t, Config{Conns: 10, Duration: 10 * time.Second, Warmup: 100 * time.Millisecond}, srvCtx, context.Background())
	require.Error(t, srv.Err)
	assert.True(t, srv.Interrupted)
	require.Error(t, cli.Err, "the client must notice the server ended the session")
	assert.Contains(t, cli.Err.Error(), "closed a connection")
	assert.Less(t, time.Since(start), 3*time.Second, "the survivor ends within 2 s")
	assert.Positive(t, cli.WindowBytes, "the partial window is kept")
}

func TestClientInterruptedKeepsWhatWasMeasured(t *testing.T) {
	cliCtx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(800*time.Millisecond, cancel)
	srv, cli := session(t, Config{Conns: 10, Duration: 10 * time.Second, Warmup: 100 * time.Millisecond}, context.Background(), cliCtx)
	assert.True(t, cli.Interrupted)
	require.Error(t, cli.Err)
	assert.InDelta(t, 0.7, cli.WindowSeconds, 0.3)
	assert.Positive(t, cli.WindowBytes)
	require.Error(t, srv.Err, "the server sees the session end before the announced window")
	assert.Equal(t, srv.TotalBytes, cli.TotalBytes, "an interrupted client still drains the session")
}

func TestServerAcceptTimeout(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Config{AcceptTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	res := s.Serve(context.Background())
	require.Error(t, res.Err)
	assert.Contains(t, res.Err.Error(), "no client connected")
}

func TestServerRejectsForeignPeer(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Config{AcceptTimeout: 3 * time.Second, SetupTimeout: 500 * time.Millisecond})
	require.NoError(t, err)
	done := make(chan *Result, 1)
	go func() { done <- s.Serve(context.Background()) }()
	c, err := net.Dial("tcp", s.Addr().String())
	require.NoError(t, err)
	fmt.Fprintf(c, "GET / HTTP/1.0\r\n")
	res := <-done
	c.Close()
	require.Error(t, res.Err)
	assert.Contains(t, res.Err.Error(), "not a tcpload client")

	// a peer that says nothing is given up on after the set-up timeout
	s, err = Listen("127.0.0.1:0", Config{AcceptTimeout: 3 * time.Second, SetupTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	go func() { done <- s.Serve(context.Background()) }()
	c, err = net.Dial("tcp", s.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	res = <-done
	require.Error(t, res.Err)
	assert.Contains(t, res.Err.Error(), "no complete tcpload header")
}

func TestClientNeedsTheServersAcknowledgement(t *testing.T) {
	// a listener that accepts and hangs up: the connect succeeds, the session does not
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	res := RunClient(context.Background(), l.Addr().String(), Config{Conns: 2, Duration: time.Second, SetupTimeout: 2 * time.Second})
	require.Error(t, res.Err)
	assert.Contains(t, res.Err.Error(), "acknowledg")
}

// rawClient opens n connections that announce a session like tcpload's client, then do nothing.
func rawClient(t *testing.T, addr string, n int, dur time.Duration) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		h := header{Direction: ServerPush, Conns: n, Index: i, Duration: dur}.encode()
		_, err = c.Write(h[:])
		require.NoError(t, err)
		conns = append(conns, c)
	}
	return conns
}

func TestServerIgnoresConnectionsThatCloseBeforeTheHeader(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Config{AcceptTimeout: 5 * time.Second, SetupTimeout: 5 * time.Second})
	require.NoError(t, err)
	done := make(chan *Result, 1)
	go func() { done <- s.Serve(context.Background()) }()
	probe, err := net.Dial("tcp", s.Addr().String()) // a health check: connect, close
	require.NoError(t, err)
	probe.Close()
	time.Sleep(100 * time.Millisecond)
	cli := RunClient(context.Background(), s.Addr().String(), Config{Conns: 3, Duration: 300 * time.Millisecond, Warmup: 1})
	srv := <-done
	require.NoError(t, cli.Err)
	require.NoError(t, srv.Err)
	assert.Equal(t, srv.TotalBytes, cli.TotalBytes)
	assert.Positive(t, srv.PerConnMin, "only the session's connections count")
}

func TestServerGivesUpOnAVanishedClient(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Config{AcceptTimeout: 5 * time.Second})
	require.NoError(t, err)
	done := make(chan *Result, 1)
	go func() { done <- s.Serve(context.Background()) }()
	// announces a 0.2 s window, then neither reads nor closes: no FIN, no RST
	conns := rawClient(t, s.Addr().String(), 2, 200*time.Millisecond)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	select {
	case res := <-done:
		require.Error(t, res.Err)
		assert.Contains(t, res.Err.Error(), "did not end the session")
		assert.Positive(t, res.WindowSeconds, "the window it measured is kept")
	case <-time.After(15 * time.Second):
		t.Fatal("the server waited more than 15 s for a client that announced a 0.2 s window")
	}
}
