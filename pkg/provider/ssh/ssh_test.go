package ssh

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pathcost/pathcost/pkg/localnet"
)

func TestParseHosts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hosts.yaml")
	require.NoError(t, os.WriteFile(file, []byte("hosts:\n  client: {ssh: root@10.0.0.5, addr: 192.168.1.5}\n  server: {ssh: 'admin@[fd00::6]:2222', dir: /var/tmp/pc}\n"), 0o600))
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("hosts:\n  client: {ssh: root@a, port: 22}\n"), 0o600))
	tests := []struct {
		name, in, err string
		want          []HostSpec
	}{
		{name: "list", in: "client=root@10.0.0.5,server=root@10.0.0.6:2222,forwarder=me@h7", want: []HostSpec{
			{Role: "client", User: "root", Addr: "10.0.0.5:22"},
			{Role: "forwarder", User: "me", Addr: "h7:22"},
			{Role: "server", User: "root", Addr: "10.0.0.6:2222"},
		}},
		{name: "file", in: file, want: []HostSpec{
			{Role: "client", User: "root", Addr: "10.0.0.5:22", DataAddr: "192.168.1.5"},
			{Role: "server", User: "admin", Addr: "[fd00::6]:2222", Dir: "/var/tmp/pc"},
		}},
		{name: "empty", in: " ", err: "no hosts"},
		{name: "no server", in: "client=root@a", err: "no server host"},
		{name: "no user", in: "client=a,server=root@b", err: `"a" is not USER@HOST`},
		{name: "bad role", in: "client=root@a,server=root@b,router=root@c", err: `role "router" unknown`},
		{name: "twice", in: "client=root@a,server=root@b,client=root@c", err: "given twice"},
		{name: "bad port", in: "client=root@a:99999,server=root@b", err: "bad port"},
		{name: "missing file", in: "/nonexistent/hosts.yaml", err: "hosts file"},
		{name: "unknown key", in: bad, err: "field port not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHosts(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestHostSpecDefaults(t *testing.T) {
	h := HostSpec{Role: "server", User: "root", Addr: "[fd00::6]:2222"}
	assert.Equal(t, "fd00::6", h.dataAddr())
	assert.Equal(t, DefaultDir, h.dir())
	assert.Equal(t, "root@[fd00::6]:2222", h.Target())
}

func TestCheckDir(t *testing.T) {
	for _, d := range []string{"/", "/tmp", "tmp/x", "/tmp/../etc", "/tmp/x y", "/tmp/$(x)"} {
		assert.Error(t, checkDir(d), d)
	}
	for _, d := range []string{"/tmp/pathcost", "/var/tmp/pc-1.2_x"} {
		assert.NoError(t, checkDir(d), d)
	}
}

func TestShellQuote(t *testing.T) {
	assert.Equal(t, `'it'\''s'`, shellQuote("it's"))
	assert.Equal(t, `sh -c 'echo "$1"' sh 'a b'`, shellCommand(`echo "$1"`, "a b"))
}

func TestSplitRules(t *testing.T) {
	rs, err := splitRules(localnet.KubeProxyRules(50012, 32000, "10.0.0.6"))
	require.NoError(t, err)
	// Builtin chains keep the host's policies: no ":PREROUTING ACCEPT" in what is applied.
	assert.NotContains(t, rs.apply, ":PREROUTING")
	assert.NotContains(t, rs.apply, ":FORWARD")
	assert.Contains(t, rs.apply, ":KUBE-SERVICES - [0:0]")
	assert.Contains(t, rs.apply, "DNAT --to-destination 10.0.0.6:50012")
	assert.Contains(t, rs.chains, "nat:KUBE-NODEPORTS")
	assert.Contains(t, rs.chains, "filter:KUBE-FORWARD")
	// Every jump from a builtin chain is deleted, then our chains are flushed and deleted.
	var deletes, flushes, removes int
	for _, u := range rs.undo {
		switch {
		case strings.Contains(u, " -D "):
			deletes++
			assert.Regexp(t, ` -D (PREROUTING|OUTPUT|POSTROUTING|FORWARD) `, u)
		case strings.Contains(u, " -F "):
			flushes++
		case strings.Contains(u, " -X "):
			removes++
		}
	}
	assert.Equal(t, 4, deletes)
	assert.Equal(t, len(rs.chains), flushes)
	assert.Equal(t, len(rs.chains), removes)

	for _, bad := range []string{"*nat\n-A X -j $(reboot)\nCOMMIT", "*nat\n:X\nCOMMIT", "*nat\nbogus\nCOMMIT"} {
		_, err := splitRules(bad)
		assert.Error(t, err, bad)
	}
}

func TestNewErrors(t *testing.T) {
	hosts, err := ParseHosts("client=root@a,server=root@b")
	require.NoError(t, err)
	_, err = New(Config{Hosts: hosts, Binary: "/nonexistent/tcpload"})
	require.ErrorContains(t, err, "tcpload binary")
	sh := tcploadBin(t)
	_, err = New(Config{Hosts: hosts, Binary: sh, KeyFile: "/nonexistent/key", KnownHosts: "/dev/null"})
	require.ErrorContains(t, err, "ssh key")
	t.Setenv("SSH_AUTH_SOCK", "")
	_, err = New(Config{Hosts: hosts, Binary: sh, KnownHosts: "/dev/null"})
	require.ErrorContains(t, err, "no ssh key")
}
