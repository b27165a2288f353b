package ssh

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/pathcost/pathcost/pkg/localnet"
)

// ruleset is a ruleset in iptables-restore format split for a host that has rules of its own:
// applied with --noflush (builtin chains keep their policies and rules; ours are appended) and
// undone rule by rule.
type ruleset struct {
	// apply is the iptables-restore --noflush input: the rules without builtin chain policies.
	apply string
	// chains are the chains the rules create, "table:chain", sorted.
	chains []string
	// undo is shell commands removing exactly what apply added: the jumps from builtin chains
	// deleted, then the created chains flushed and deleted.
	undo []string
}

// splitRules parses iptables-restore text (tables, chain declarations, -A rules, COMMIT).
// Rules may hold double-quoted comments but nothing a shell would expand, so that each can be
// repeated as an `iptables -D` command.
func splitRules(text string) (ruleset, error) {
	var rs ruleset
	var apply, deletes, flushes, removes []string
	table := ""
	user := map[string]bool{}
	for n, line := range strings.Split(strings.TrimSpace(text), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			apply = append(apply, line)
		case line == "COMMIT":
			apply = append(apply, line)
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) < 2 || table == "" {
				return ruleset{}, fmt.Errorf("rules line %d: bad chain declaration %q", n+1, line)
			}
			if f[1] != "-" {
				continue // a builtin chain: keep the host's policy
			}
			user[table+":"+f[0]] = true
			rs.chains = append(rs.chains, table+":"+f[0])
			apply = append(apply, line)
			flushes = append(flushes, "iptables -w -t "+table+" -F "+f[0])
			removes = append(removes, "iptables -w -t "+table+" -X "+f[0])
		case strings.HasPrefix(line, "-A "):
			if strings.ContainsAny(line, "$`\\'") || strings.Count(line, `"`)%2 != 0 {
				return ruleset{}, fmt.Errorf("rules line %d: %q has characters a shell would expand", n+1, line)
			}
			apply = append(apply, line)
			chain := strings.Fields(line)[1]
			if !user[table+":"+chain] {
				deletes = append(deletes, "iptables -w -t "+table+" -D"+strings.TrimPrefix(line, "-A"))
			}
		default:
			return ruleset{}, fmt.Errorf("rules line %d: unexpected %q", n+1, line)
		}
	}
	sort.Strings(rs.chains)
	rs.apply = strings.Join(apply, "\n") + "\n"
	for _, group := range [][]string{deletes, flushes, removes} {
		for _, c := range group {
			rs.undo = append(rs.undo, c+" 2>/dev/null")
		}
	}
	return rs, nil
}

// applyScript refuses a host that already has one of the chains (a real kube-proxy, or a run
// that was not cleaned up), saves ip_forward and writes the undo script before changing
// anything, then enables forwarding and loads the rules from stdin. Args: CHAINS UNDOFILE
// FWDFILE UNDO.
const applyScript = `PATH=$PATH:/usr/sbin:/sbin
for tc in $1; do
  t=${tc%%:*}; c=${tc#*:}
  if iptables -w -t "$t" -nL "$c" >/dev/null 2>&1; then
    echo "chain $c already exists in table $t: this host runs kube-proxy or a run was not cleaned up; pathcost touches no rules it did not write" >&2
    exit 3
  fi
done
cat /proc/sys/net/ipv4/ip_forward > "$3" || exit 1
printf '%s\n' "$4" > "$2" || exit 1
echo 1 > /proc/sys/net/ipv4/ip_forward || exit 1
iptables-restore -w --noflush
`

// undoScript renders the undo file: remove the rules, restore ip_forward, then fail if a
// chain is still there.
func undoScript(rs ruleset, fwdFile string) string {
	lines := []string{"PATH=$PATH:/usr/sbin:/sbin"}
	lines = append(lines, rs.undo...)
	lines = append(lines,
		"if [ -f "+shellQuote(fwdFile)+" ]; then cat "+shellQuote(fwdFile)+" > /proc/sys/net/ipv4/ip_forward && rm -f "+shellQuote(fwdFile)+"; fi",
		"fail=0")
	for _, tc := range rs.chains {
		t, c, _ := strings.Cut(tc, ":")
		lines = append(lines, "if iptables -w -t "+t+" -nL "+c+" >/dev/null 2>&1; then echo 'chain "+c+" is still in table "+t+"' >&2; fail=1; fi")
	}
	return strings.Join(append(lines, "exit $fail"), "\n")
}

// applyNodePort loads kube-proxy's NodePort rules on the forwarder: the client dials
// forwarder:NodePort, which DNATs to server:ServerPort and masquerades.
func (pa *path) applyNodePort(ctx context.Context) error {
	serverIP := pa.server.spec.dataAddr()
	if ip := net.ParseIP(serverIP); ip == nil || ip.To4() == nil {
		return fmt.Errorf("nodeport: the server's traffic address %q is not an IPv4 address (kube-proxy's rules here are IPv4; give addr: in the hosts file)", serverIP)
	}
	rs, err := splitRules(localnet.KubeProxyRules(localnet.DefaultServerPort, localnet.DefaultNodePort, serverIP))
	if err != nil {
		return fmt.Errorf("nodeport rules: %w", err)
	}
	fw := pa.forwarder
	undoFile := fw.run + "/undo/" + pa.id + ".sh"
	fwdFile := fw.run + "/undo/" + pa.id + ".ipfwd"
	if _, err := fw.output(ctx, strings.NewReader(rs.apply), applyScript, strings.Join(rs.chains, " "), undoFile, fwdFile, undoScript(rs, fwdFile)); err != nil {
		return fmt.Errorf("nodeport: apply kube-proxy rules: %w", err)
	}
	pa.target = net.JoinHostPort(fw.spec.dataAddr(), strconv.Itoa(localnet.DefaultNodePort))
	var chains []string
	for _, tc := range rs.chains {
		chains = append(chains, strings.TrimPrefix(tc, "nat:"))
	}
	pa.rules = fmt.Sprintf("nodeport: client dials the forwarder %s; kube-proxy (iptables mode) rules on the forwarder for the run only (loaded with iptables-restore --noflush, removed at Down; net.ipv4.ip_forward=1 meanwhile): PREROUTING -> KUBE-SERVICES -> KUBE-NODEPORTS -> KUBE-EXT -> KUBE-MARK-MASQ, KUBE-SVC -> KUBE-SEP DNAT to the server %s:%d, KUBE-POSTROUTING masquerade (chains %s)",
		pa.target, serverIP, localnet.DefaultServerPort, strings.Join(chains, ", "))
	return nil
}
