package sshtest

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/result"
)

// RunPair runs one short server-push session over a realised path (tcpload server on its
// Server, client on its Client, records on stdout) and returns both records; it fails the test
// when either side fails or bytes are not conserved.
func RunPair(t testing.TB, pa provider.Path, conns int, duration string) (client, server *result.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var sout, serr, cout, cerr bytes.Buffer
	sp, err := pa.Server().Start(ctx, []string{"server", "--listen", pa.Listen(), "--json", "-", "--quiet", "--accept-timeout", "30s"}, &sout, &serr)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	cp, err := pa.Client().Start(ctx, []string{"client", "--connect", pa.Target(), "--conns", itoa(conns), "--duration", duration, "--warmup", "0.5s", "--json", "-", "--quiet"}, &cout, &cerr)
	if err != nil {
		t.Fatalf("start client: %v", err)
	}
	cerrWait := cp.Wait()
	serrWait := sp.Wait()
	if cerrWait != nil || serrWait != nil {
		t.Fatalf("client: %v %s; server: %v %s", cerrWait, cerr.String(), serrWait, serr.String())
	}
	if client, err = result.Decode(cout.Bytes()); err != nil {
		t.Fatalf("client record: %v: %q", err, cout.String())
	}
	if server, err = result.Decode(sout.Bytes()); err != nil {
		t.Fatalf("server record: %v: %q", err, sout.String())
	}
	if client.TotalBytes != server.TotalBytes {
		t.Fatalf("bytes not conserved: client read %d, server wrote %d", client.TotalBytes, server.TotalBytes)
	}
	return client, server
}

func itoa(n int) string { return strconv.Itoa(n) }
