package ssh

import (
	"bytes"
	"fmt"
	"net"
	"os"
	posixpath "path"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Roles a host can play. Client and server are needed by every scenario the provider realises;
// the forwarder only by nodeport.
const (
	RoleClient    = "client"
	RoleServer    = "server"
	RoleForwarder = "forwarder"
)

// DefaultDir is where tcpload is staged on a host unless the host says otherwise.
const DefaultDir = "/tmp/pathcost"

// HostSpec is one host as the user names it.
type HostSpec struct {
	// Role is client, server or forwarder.
	Role string
	// User is the login name.
	User string
	// Addr is the ssh address, host:port.
	Addr string
	// DataAddr is the address the other hosts reach this one at for traffic (what the client
	// dials, where the forwarder sends); the host part of Addr when empty.
	DataAddr string
	// Dir is the directory tcpload is staged in on the host (DefaultDir when empty). The
	// provider creates it, puts the binary and one run directory in it, and removes both.
	Dir string
}

// Target is USER@HOST:PORT, how errors name the host.
func (h HostSpec) Target() string { return h.User + "@" + h.Addr }

// dataAddr is DataAddr or the host part of Addr.
func (h HostSpec) dataAddr() string {
	if h.DataAddr != "" {
		return h.DataAddr
	}
	host, _, err := net.SplitHostPort(h.Addr)
	if err != nil {
		return h.Addr
	}
	return host
}

// dir is Dir or DefaultDir.
func (h HostSpec) dir() string {
	if h.Dir != "" {
		return h.Dir
	}
	return DefaultDir
}

// ParseHosts reads the -hosts value: either a list "client=root@10.0.0.5,server=root@10.0.0.6[:PORT]
// [,forwarder=...]" or the path of a YAML file of the form
//
//	hosts:
//	  client: {ssh: root@10.0.0.5, addr: 192.168.1.5}
//	  server: {ssh: root@10.0.0.6:2222, dir: /var/tmp/pathcost}
//	  forwarder: {ssh: admin@10.0.0.7}
//
// (addr: the address traffic uses when it differs from the ssh address; dir: where tcpload is
// staged). The result is sorted by role and validated.
func ParseHosts(value string) ([]HostSpec, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, fmt.Errorf("no hosts: want client=USER@HOST,server=USER@HOST[,forwarder=USER@HOST] or a YAML file")
	}
	if strings.Contains(value, "=") {
		return parseHostList(value)
	}
	data, err := os.ReadFile(value)
	if err != nil {
		return nil, fmt.Errorf("hosts file: %w", err)
	}
	return parseHostsYAML(value, data)
}

func parseHostList(value string) ([]HostSpec, error) {
	var hosts []HostSpec
	for _, item := range strings.Split(value, ",") {
		role, target, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("hosts: %q is not ROLE=USER@HOST[:PORT]", item)
		}
		h, err := parseTarget(role, target)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	return validateHosts(hosts)
}

// hostsFile is the YAML form of ParseHosts.
type hostsFile struct {
	Hosts map[string]struct {
		SSH  string `yaml:"ssh"`
		Addr string `yaml:"addr"`
		Dir  string `yaml:"dir"`
	} `yaml:"hosts"`
}

func parseHostsYAML(name string, data []byte) ([]HostSpec, error) {
	var f hostsFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("hosts file %s: %w", name, err)
	}
	var hosts []HostSpec
	for role, e := range f.Hosts {
		h, err := parseTarget(role, e.SSH)
		if err != nil {
			return nil, fmt.Errorf("hosts file %s: %w", name, err)
		}
		h.DataAddr, h.Dir = e.Addr, e.Dir
		hosts = append(hosts, h)
	}
	out, err := validateHosts(hosts)
	if err != nil {
		return nil, fmt.Errorf("hosts file %s: %w", name, err)
	}
	return out, nil
}

// parseTarget parses USER@HOST[:PORT] (an IPv6 host in brackets).
func parseTarget(role, target string) (HostSpec, error) {
	role, target = strings.TrimSpace(role), strings.TrimSpace(target)
	user, hostport, ok := strings.Cut(target, "@")
	if !ok || user == "" || hostport == "" {
		return HostSpec{}, fmt.Errorf("host %s: %q is not USER@HOST[:PORT]", role, target)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), "22"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return HostSpec{}, fmt.Errorf("host %s: bad port %q in %q", role, port, target)
	}
	if host == "" || strings.ContainsAny(host, " /@") {
		return HostSpec{}, fmt.Errorf("host %s: bad host %q in %q", role, host, target)
	}
	return HostSpec{Role: role, User: user, Addr: net.JoinHostPort(host, port)}, nil
}

// validateHosts checks roles (known, each once, client and server present) and directories,
// and sorts by role.
func validateHosts(hosts []HostSpec) ([]HostSpec, error) {
	seen := map[string]bool{}
	for _, h := range hosts {
		switch h.Role {
		case RoleClient, RoleServer, RoleForwarder:
		default:
			return nil, fmt.Errorf("host role %q unknown: want client, server or forwarder", h.Role)
		}
		if seen[h.Role] {
			return nil, fmt.Errorf("host role %s given twice", h.Role)
		}
		seen[h.Role] = true
		if err := checkDir(h.dir()); err != nil {
			return nil, fmt.Errorf("host %s: %w", h.Role, err)
		}
		if strings.ContainsAny(h.DataAddr, " /@") {
			return nil, fmt.Errorf("host %s: bad traffic address %q", h.Role, h.DataAddr)
		}
	}
	for _, r := range []string{RoleClient, RoleServer} {
		if !seen[r] {
			return nil, fmt.Errorf("no %s host: want client=USER@HOST,server=USER@HOST[,forwarder=USER@HOST]", r)
		}
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Role < hosts[j].Role })
	return hosts, nil
}

// checkDir accepts an absolute, clean directory at least two levels deep whose name is plain,
// so that nothing the provider removes can be a system directory.
func checkDir(d string) error {
	if !posixpath.IsAbs(d) || posixpath.Clean(d) != d || strings.Count(d, "/") < 2 {
		return fmt.Errorf("staging directory %q: want an absolute, clean path at least two levels deep (like %s)", d, DefaultDir)
	}
	for _, r := range d {
		if !(r == '/' || r == '-' || r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return fmt.Errorf("staging directory %q: only letters, digits and / . - _ are allowed", d)
		}
	}
	return nil
}
