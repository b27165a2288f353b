package nskube

import (
	"context"
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pathcost/pathcost/pkg/image"
)

const cliUsage = `usage: tcpload cluster SUBCOMMAND [flags]

A real multi-node Kubernetes on this machine, offline (nskube): nodes are network namespaces,
the binaries are built from the Go module proxy into %s/VERSION/bin (first build: about
half an hour on 2 cores), images are loaded without a registry. Needs root and the Debian
packages: %s.

subcommands:
  build   build (or find cached) the Kubernetes binaries   [--version V]
  up      start a cluster, print its kubeconfig             [--name N] [--nodes N] [--cni bridge|ptp] [--version V]
  down    stop a cluster and remove everything it made      [--name N]
  status  show a cluster's nodes, processes and leftovers   [--name N]
  load    load image archives into every node, or (none given) the tcpload image built from
          a static tcpload binary                          [--name N] [--binary PATH] [--ref REF] [ARCHIVE...]
`

// CLI runs `tcpload cluster ARGS`; it returns the exit status.
func CLI(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(stderr, cliUsage, CacheRoot(), strings.Join(AptPackages, " "))
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	fs := flag.NewFlagSet("tcpload cluster "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "pathcost", "cluster name")
	nodes := fs.Int("nodes", 2, "number of nodes (3: client, forward, server)")
	cni := fs.String("cni", CNIBridge, "CNI mode: bridge (routed pod CIDRs) or ptp (pod IPs from the VPC subnet)")
	version := fs.String("version", DefaultVersion, "Kubernetes version")
	stateRoot := fs.String("state", StateRoot(), "directory holding the clusters' files")
	binary := fs.String("binary", "", "load: static tcpload binary to make the image of (default: this program, if static)")
	ref := fs.String("ref", image.TCPLoadRef, "load: name of the tcpload image")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if args[0] != "build" {
		if err := ValidName(*name); err != nil {
			fmt.Fprintln(stderr, "tcpload cluster "+args[0]+":", err)
			return 2
		}
	}
	// SIGINT/SIGTERM cancel ctx: an interrupted `up` tears down what it started (Up does, on any
	// error), an interrupted build or load stops. During `down` they are held until it is done.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	interrupted := func(code int) int {
		if ctx.Err() != nil {
			return 130
		}
		return code
	}
	switch args[0] {
	case "build":
		dir, err := Build(ctx, BuildOptions{Version: *version, Out: stderr})
		if err != nil {
			fmt.Fprintln(stderr, "tcpload cluster build:", err)
			return interrupted(1)
		}
		fmt.Fprintln(stdout, dir)
		return 0
	case "up":
		st, err := Up(ctx, Options{Name: *name, Nodes: *nodes, CNI: *cni, Version: *version, StateRoot: *stateRoot, Out: stderr})
		if err != nil {
			fmt.Fprintln(stderr, "tcpload cluster up:", err)
			return interrupted(1)
		}
		fmt.Fprintf(stderr, "cluster %s up in %.1fs: %d nodes (%s CNI)\n", st.Name, st.UpSeconds, len(st.Nodes), st.CNI)
		fmt.Fprintf(stderr, "use it from the host:\n  export KUBECONFIG=%s\n  %s get nodes -o wide\n", st.Kubeconfig, filepath.Join(st.BinDir, "kubectl"))
		fmt.Fprintf(stderr, "pod and node IPs are reachable from the VPC namespace:\n  nsenter --net=/proc/%d/ns/net ping %s\n", st.VPC, st.Nodes[0].IP)
		fmt.Fprintf(stderr, "stop it with: tcpload cluster down --name %s\n", st.Name)
		fmt.Fprintln(stdout, st.Kubeconfig)
		return 0
	case "down":
		if err := Down(context.Background(), *stateRoot, *name, stderr); err != nil {
			fmt.Fprintln(stderr, "tcpload cluster down:", err)
			return 1
		}
		return 0
	case "status":
		return status(*stateRoot, *name, stdout)
	case "load":
		if err := load(ctx, *stateRoot, *name, *binary, *ref, fs.Args(), stderr); err != nil {
			fmt.Fprintln(stderr, "tcpload cluster load:", err)
			return interrupted(1)
		}
		return 0
	}
	fmt.Fprintf(stderr, "tcpload cluster: unknown subcommand %q\n", args[0])
	return 2
}

func status(root, name string, w io.Writer) int {
	st, err := LoadState(root, name)
	if err != nil {
		left := Leftovers(root, name)
		if len(left) == 0 {
			fmt.Fprintf(w, "cluster %s: not running, nothing left on the host\n", name)
			return 0
		}
		fmt.Fprintf(w, "cluster %s: no state, but left behind: %s\n", name, strings.Join(left, "; "))
		return 1
	}
	fmt.Fprintf(w, "cluster %s (Kubernetes %s, %s CNI), up since %s\nkubeconfig: %s\nVPC namespace: /proc/%d/ns/net (API inside: https://%s:%d; on the host: https://127.0.0.1:%d)\n",
		st.Name, st.Version, st.CNI, st.CreatedAt.Format(time.RFC3339), st.Kubeconfig, st.VPC, vpcGateway, apiPort, st.APIPort)
	for _, n := range st.Nodes {
		fmt.Fprintf(w, "  node %-20s %-12s pods %-15s %s=%s\n", n.Name, n.IP, n.PodCIDR, RoleLabel, n.Role)
	}
	bad := 0
	for _, p := range st.Procs {
		state := "running"
		if !st.owns(p) {
			state = "GONE"
			bad++
		}
		fmt.Fprintf(w, "  %-8s %-24s %-20s %s\n", state, p.Name, p.Node, p.Log)
	}
	if _, err := os.Stat(st.Kubeconfig); err != nil {
		bad++
	}
	if bad > 0 {
		return 1
	}
	return 0
}

func load(ctx context.Context, root, name, binary, ref string, archives []string, w io.Writer) error {
	st, err := LoadState(root, name)
	if err != nil {
		return fmt.Errorf("cluster %s is not running: %w", name, err)
	}
	if len(archives) == 0 {
		if binary == "" {
			if binary, err = os.Executable(); err != nil {
				return err
			}
		}
		if !isStatic(binary) {
			return fmt.Errorf("%s is dynamically linked and would not run in the image; build a static one (CGO_ENABLED=0 go build -o /tmp/tcpload-static ./cmd/tcpload) and pass --binary", binary)
		}
		dir, err := os.MkdirTemp("", "pathcost-image-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		a := filepath.Join(dir, "tcpload.tar")
		if err := image.WriteArchive(image.TCPLoad(binary, ref), a); err != nil {
			return err
		}
		archives = []string{a}
		fmt.Fprintf(w, "image %s built from %s\n", ref, binary)
	}
	for _, a := range archives {
		if err := st.LoadImageArchive(ctx, a); err != nil {
			return err
		}
		fmt.Fprintf(w, "loaded %s into %d nodes\n", a, len(st.Nodes))
	}
	return nil
}

// isStatic says whether the ELF file has no program interpreter (no dynamic loader needed).
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}
