package ssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// DefaultConnectTimeout bounds dialling and the ssh handshake with one host.
const DefaultConnectTimeout = 10 * time.Second

// auth is how the provider logs in: the signers and where they came from (for errors).
type auth struct {
	signers []xssh.Signer
	from    string // "key /root/.ssh/id_ed25519 and 2 ssh-agent keys"
	closer  func() error
}

// loadAuth collects the signers: cfg.Signers, the -ssh-key file, then ssh-agent's keys.
func loadAuth(cfg Config) (*auth, error) {
	a := &auth{closer: func() error { return nil }}
	var from []string
	a.signers = append(a.signers, cfg.Signers...)
	if len(cfg.Signers) > 0 {
		from = append(from, fmt.Sprintf("%d key(s) given by the %s provider", len(cfg.Signers), cfg.name()))
	}
	if cfg.KeyFile != "" {
		data, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("ssh key: %w", err)
		}
		s, err := xssh.ParsePrivateKey(data)
		var pm *xssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, fmt.Errorf("ssh key %s is encrypted: add it to ssh-agent (ssh-add %s) and leave -ssh-key out", cfg.KeyFile, cfg.KeyFile)
		}
		if err != nil {
			return nil, fmt.Errorf("ssh key %s: %w", cfg.KeyFile, err)
		}
		a.signers = append(a.signers, s)
		from = append(from, "key "+cfg.KeyFile)
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" && !cfg.NoAgent {
		conn, err := net.Dial("unix", sock)
		if err == nil {
			signers, err := agent.NewClient(conn).Signers()
			if err != nil {
				_ = conn.Close()
				return nil, fmt.Errorf("ssh-agent at %s: %w", sock, err)
			}
			a.signers = append(a.signers, signers...)
			from = append(from, fmt.Sprintf("%d ssh-agent key(s)", len(signers)))
			a.closer = conn.Close
		}
	}
	if len(a.signers) == 0 {
		return nil, fmt.Errorf("no ssh key: give -ssh-key FILE or load a key into ssh-agent (SSH_AUTH_SOCK)")
	}
	a.from = strings.Join(from, " and ")
	return a, nil
}

// hostKeys checks host keys against known_hosts, or accepts any key when insecure.
type hostKeys struct {
	file     string
	algos    []string // fixed algorithms (with a callback given by another provider)
	check    xssh.HostKeyCallback
	insecure bool
}

// DefaultKnownHosts is ~/.ssh/known_hosts.
func DefaultKnownHosts() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".ssh", "known_hosts")
}

func loadHostKeys(cfg Config) (*hostKeys, error) {
	if cfg.HostKeyCallback != nil {
		return &hostKeys{check: cfg.HostKeyCallback, algos: cfg.HostKeyAlgorithms, file: "the keys given by the " + cfg.name() + " provider"}, nil
	}
	if cfg.Insecure {
		return &hostKeys{insecure: true, check: xssh.InsecureIgnoreHostKey()}, nil
	}
	file := cfg.KnownHosts
	if file == "" {
		file = DefaultKnownHosts()
	}
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		// No file: every host is unknown, and the error says how to accept it.
		return &hostKeys{file: file, check: func(string, net.Addr, xssh.PublicKey) error {
			return &knownhosts.KeyError{}
		}}, nil
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("known_hosts %s: %w", file, err)
	}
	return &hostKeys{file: file, check: cb}, nil
}

// algorithms returns the host key algorithms of the keys known_hosts holds for addr, so the
// server presents a key we can check (nil: let the server choose).
func (k *hostKeys) algorithms(addr string) []string {
	if k.insecure || k.algos != nil {
		return k.algos
	}
	_, probe, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	s, err := xssh.NewSignerFromKey(probe)
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(k.check(addr, &net.TCPAddr{}, s.PublicKey()), &ke) {
		return nil
	}
	var algos []string
	for _, w := range ke.Want {
		switch t := w.Key.Type(); t {
		case xssh.KeyAlgoRSA:
			algos = append(algos, xssh.KeyAlgoRSASHA512, xssh.KeyAlgoRSASHA256, xssh.KeyAlgoRSA)
		default:
			algos = append(algos, t)
		}
	}
	return algos
}

// callback wraps the check so that an unknown or changed key becomes an error with the
// fingerprint and what to do.
func (k *hostKeys) callback(h HostSpec) xssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key xssh.PublicKey) error {
		err := k.check(hostname, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		host, port, _ := net.SplitHostPort(h.Addr)
		fp := key.Type() + " " + xssh.FingerprintSHA256(key)
		keyscan := fmt.Sprintf("ssh-keyscan -p %s -t %s %s >> %s", port, strings.TrimPrefix(key.Type(), "ssh-"), host, k.file)
		if len(ke.Want) == 0 {
			return fmt.Errorf("host key of %s (%s) is unknown: it is not in %s; the host presented %s. If that is the host's key, accept it with `%s` (or ssh to it once and answer yes); -ssh-insecure skips the check, for throwaway VMs only", h.Role, h.Addr, k.file, fp, keyscan)
		}
		return fmt.Errorf("host key of %s (%s) does NOT match %s line %d: the host presented %s. If the host was reinstalled, remove the old line (ssh-keygen -R %s) and accept the new key with `%s`", h.Role, h.Addr, ke.Want[0].Filename, ke.Want[0].Line, fp, host, keyscan)
	}
}

// dialFunc dials a TCP address.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// connect dials h and logs in, within timeout; errors name the role, user and address.
func connect(ctx context.Context, h HostSpec, dial dialFunc, a *auth, keys *hostKeys, timeout time.Duration) (*xssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(ctx, "tcp", h.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s host %s: %w (is the host up and sshd listening? waited at most %s)", h.Role, h.Target(), err, timeout)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	cfg := &xssh.ClientConfig{
		User:              h.User,
		Auth:              []xssh.AuthMethod{xssh.PublicKeys(a.signers...)},
		HostKeyCallback:   keys.callback(h),
		HostKeyAlgorithms: keys.algorithms(knownhosts.Normalize(h.Addr)),
		Timeout:           timeout,
	}
	c, chans, reqs, err := xssh.NewClientConn(conn, h.Addr, cfg)
	if err != nil {
		_ = conn.Close()
		switch {
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("ssh %s host %s: authentication failed for user %s on %s with %s: %w", h.Role, h.Target(), h.User, h.Addr, a.from, err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("ssh %s host %s: no ssh handshake within %s: %w", h.Role, h.Target(), timeout, err)
		}
		return nil, fmt.Errorf("ssh %s host %s: %w", h.Role, h.Target(), err)
	}
	if !stop() {
		_ = c.Close()
		return nil, fmt.Errorf("ssh %s host %s: no ssh handshake within %s", h.Role, h.Target(), timeout)
	}
	_ = conn.SetDeadline(time.Time{})
	return xssh.NewClient(c, chans, reqs), nil
}
