//go:build nskube

package kube

// Integration tests on a real nskube cluster (root, the nskube packages, the Kubernetes binaries
// built: make cluster-build). Run under the machine-wide lock:
//
//	sudo go test -tags nskube -run NSKube -v ./pkg/provider/kube

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pathcost/pathcost/pkg/cluster/nskube"
	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/topo"
)

// runPair runs one tcpload server and client (and a sampler on a forwarder) on a path and returns
// the records.
func runPair(t *testing.T, p provider.Path) (srv, cli *result.Record, smp *result.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var so, se, co, ce, mo, me bytes.Buffer
	sp, err := p.Server().Start(ctx, []string{"server", "--listen", p.Listen(), "--json", "-", "--quiet", "--accept-timeout", "60s", "--setup-timeout", "60s"}, &so, &se)
	require.NoError(t, err)
	var sampler provider.Proc
	if f := p.Forwarder(); f != nil {
		sampler, err = f.Start(ctx, []string{"sample", "--warmup", "1.3s", "--duration", "1s", "--json", "-"}, &mo, &me)
		require.NoError(t, err)
	}
	cp, err := p.Client().Start(ctx, []string{"client", "--connect", p.Target(), "--conns", "10", "--duration", "2s", "--warmup", "1s", "--json", "-", "--quiet", "--setup-timeout", "60s"}, &co, &ce)
	require.NoError(t, err)
	require.NoError(t, cp.Wait(), "client: %s", ce.String())
	require.NoError(t, sp.Wait(), "server: %s", se.String())
	srv, err = result.Decode(so.Bytes())
	require.NoError(t, err, "server record: %q / %q", so.String(), se.String())
	cli, err = result.Decode(co.Bytes())
	require.NoError(t, err, "client record: %q / %q", co.String(), ce.String())
	assert.Equal(t, srv.TotalBytes, cli.TotalBytes, "bytes conserved")
	assert.Positive(t, cli.Mbps)
	if sampler != nil {
		require.NoError(t, sampler.Wait(), "sampler: %s", me.String())
		smp, err = result.Decode(mo.Bytes())
		require.NoError(t, err)
	}
	return srv, cli, smp
}

func TestNSKubeScenarios(t *testing.T) {
	if err := nskube.Requirements(); err != nil {
		t.Skipf("nskube: %v", err)
	}
	ctx := context.Background()
	specs := []topo.Spec{topo.Plain, topo.GRIstio, topo.NodePort}
	k, err := OpenNSKube(ctx, NSKubeConfig{Scenarios: specs})
	require.NoError(t, err)
	closed := false
	defer func() {
		if !closed {
			_ = k.Close(ctx)
		}
	}()
	require.NoError(t, k.Sweep(ctx))
	for _, s := range specs {
		t.Run(s.Name, func(t *testing.T) {
			require.NoError(t, k.Check(ctx, s))
			p, err := k.Up(ctx, s)
			require.NoError(t, err)
			defer func() { assert.NoError(t, p.Down(ctx)) }()
			t.Logf("notes:\n  %s", strings.Join(p.Notes(), "\n  "))
			srv, cli, smp := runPair(t, p)
			t.Logf("%s: client %.0f Mbps %.2f cores, server %.0f Mbps %.2f cores", s.Name, cli.Mbps, cli.CPU.Cores, srv.Mbps, srv.CPU.Cores)
			fmt.Printf("%s: client %.0f Mbps, server %.0f Mbps\n", s.Name, cli.Mbps, srv.Mbps)
			if smp != nil {
				t.Logf("forwarder: busy %.2f cores, iface rx %.0f Mbps", smp.Node.BusyCores, smp.Iface.RxMbps)
			}
		})
	}
	left, err := k.Leftovers(ctx)
	require.NoError(t, err)
	assert.Empty(t, left)
	closed = true
	require.NoError(t, k.Close(ctx))
}
