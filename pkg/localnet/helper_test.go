package localnet

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pathcost/pathcost/pkg/interrupt"
)

// The helper-process pattern: the test binary re-executes itself with
// -test.run=^TestHelperProcess$ and LOCALNET_HELPER set to a mode.
const helperEnv = "LOCALNET_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "" && os.Geteuid() == 0 {
		HandleSignals(exitOnSignal)
	}
	os.Exit(m.Run())
}

// exitOnSignal is the handler a program gives HandleSignals: report, exit 128+signal.
func exitOnSignal(sig os.Signal, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "localnet: %v: teardown: %v\n", sig, err)
	}
	os.Exit(interrupt.ExitCode(sig))
}

// TestHelperProcess is not a test: it is the body of helper processes.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process body; runs only when re-executed by another test")
	}
	var err error
	switch mode {
	case "server":
		err = helperServer()
	case "client":
		err = helperClient()
	case "tlsprobe":
		err = helperTLSProbe()
	case "up-and-wait":
		err = helperUpAndWait()
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func envInt(name string) int {
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		return 0
	}
	return n
}

// payload is the deterministic byte stream every connection carries.
func payload(n int) []byte {
	b := make([]byte, n)
	var seed [32]byte
	copy(seed[:], "pathcost localnet payload seed..")
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

// helperServer accepts LOCALNET_CONNS connections on LOCALNET_LISTEN, prints
// each peer, pushes LOCALNET_BYTES to each and closes it.
func helperServer() error {
	conns, size := envInt("LOCALNET_CONNS"), envInt("LOCALNET_BYTES")
	ln, err := net.Listen("tcp", os.Getenv("LOCALNET_LISTEN"))
	if err != nil {
		return err
	}
	defer ln.Close()
	data := payload(size)
	fmt.Println("ready")
	var wg sync.WaitGroup
	errc := make(chan error, conns)
	for range conns {
		_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		fmt.Println("peer", c.RemoteAddr().String())
		wg.Go(func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write(data); err != nil {
				errc <- err
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// connResult is what the client reports per connection.
type connResult struct {
	Bytes  int    `json:"bytes"`
	SHA    string `json:"sha"`
	Local  string `json:"local"`
	Remote string `json:"remote"`
	Err    string `json:"err,omitempty"`
}

// helperClient opens LOCALNET_CONNS connections to LOCALNET_TARGET at once,
// reads each to EOF and prints one JSON result per connection.
func helperClient() error {
	conns := envInt("LOCALNET_CONNS")
	target := os.Getenv("LOCALNET_TARGET")
	results := make([]connResult, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			r := &results[i]
			c, err := net.DialTimeout("tcp", target, 10*time.Second)
			if err != nil {
				r.Err = err.Error()
				return
			}
			defer c.Close()
			r.Local, r.Remote = c.LocalAddr().String(), c.RemoteAddr().String()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			h := sha256.New()
			n, err := io.Copy(h, c)
			r.Bytes, r.SHA = int(n), hex.EncodeToString(h.Sum(nil))
			if err != nil {
				r.Err = err.Error()
			}
		})
	}
	wg.Wait()
	enc := json.NewEncoder(os.Stdout)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// helperTLSProbe connects to a TLS server at LOCALNET_TARGET without a
// client certificate, prints the server certificate's URI SANs and whether
// the server rejected it.
func helperTLSProbe() error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", os.Getenv("LOCALNET_TARGET"), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"istio"}})
	if err != nil {
		fmt.Println("rejected without client cert (handshake):", err)
		return nil
	}
	defer c.Close()
	for _, cert := range c.ConnectionState().PeerCertificates {
		for _, u := range cert.URIs {
			fmt.Println("peer cert", u.String())
		}
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		fmt.Println("rejected without client cert:", err)
		return nil
	}
	return errors.New("server accepted a client without certificate")
}

// helperUpAndWait brings an env up (with the signal handler installed),
// prints "up PREFIX PID..." and waits to be signalled (at most 60 s).
func helperUpAndWait() error {
	HandleSignals(exitOnSignal)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env, err := Up(ctx, Spec{Kind: Kind(os.Getenv("LOCALNET_KIND")), Istio: os.Getenv("LOCALNET_ISTIO") == "1"})
	if err != nil {
		return err
	}
	line := "up " + env.Prefix
	for _, s := range env.Sidecars {
		line += " " + strconv.Itoa(s.PID)
	}
	fmt.Println(line)
	time.Sleep(60 * time.Second)
	_ = env.Down()
	return errors.New("not signalled within 60 s")
}

// helperCmd builds a helper process command running in h's namespace.
func helperCmd(t *testing.T, ctx context.Context, env *Env, h Host, mode string, vars ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := env.Command(ctx, h, exe, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + mode}, vars...)...)
	return cmd
}

// pushResult is one server->client run.
type pushResult struct {
	peers   []string     // the server's view of each client (IP)
	conns   []connResult // the client's view
	elapsed time.Duration
}

// push runs the helper server in env.Server and the helper client in
// env.Client and has the server push size bytes on each of conns connections.
func push(t *testing.T, env *Env, conns, size int) pushResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	vars := []string{"LOCALNET_CONNS=" + strconv.Itoa(conns), "LOCALNET_BYTES=" + strconv.Itoa(size)}
	srv := helperCmd(t, ctx, env, env.Server, "server", append(vars, "LOCALNET_LISTEN="+env.Listen)...)
	var srvErr lockedBuffer
	srv.Stderr = &srvErr
	out, err := srv.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	sc := bufio.NewScanner(out)
	require.True(t, sc.Scan(), "server did not start: %s", srvErr.String())
	require.Equal(t, "ready", sc.Text())

	start := time.Now()
	cli := helperCmd(t, ctx, env, env.Client, "client", append(vars, "LOCALNET_TARGET="+env.Target)...)
	var cliErr strings.Builder
	cli.Stderr = &cliErr
	cliOut, err := cli.Output()
	require.NoError(t, err, "client: %s", cliErr.String())
	res := pushResult{elapsed: time.Since(start)}

	for sc.Scan() {
		if ip, ok := strings.CutPrefix(sc.Text(), "peer "); ok {
			host, _, err := net.SplitHostPort(ip)
			require.NoError(t, err)
			res.peers = append(res.peers, host)
		}
	}
	require.NoError(t, srv.Wait(), "server: %s", srvErr.String())
	dec := json.NewDecoder(strings.NewReader(string(cliOut)))
	for dec.More() {
		var r connResult
		require.NoError(t, dec.Decode(&r))
		res.conns = append(res.conns, r)
	}
	want := sha256.Sum256(payload(size))
	require.Len(t, res.conns, conns)
	require.Len(t, res.peers, conns)
	for i, r := range res.conns {
		require.Empty(t, r.Err, "connection %d", i)
		require.Equal(t, size, r.Bytes, "connection %d: bytes", i)
		require.Equal(t, hex.EncodeToString(want[:]), r.SHA, "connection %d: content", i)
		require.Equal(t, env.Target, r.Remote, "connection %d: the client sees the address it dialled", i)
	}
	return res
}
