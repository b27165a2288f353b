package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pathcost/pathcost/pkg/cluster/nskube"
	"github.com/pathcost/pathcost/pkg/image"
)

const clusterUsage = `usage: tcpload cluster SUBCOMMAND [flags]

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

Every subcommand also takes --state DIR (default %s), where the clusters keep their files.
SIGINT/SIGTERM stop build, up (which tears down what it started) and load; down finishes first.
`

// runCluster is `tcpload cluster build|up|down|status|load`: the offline Kubernetes cluster
// (pkg/cluster/nskube) for humans.
func runCluster(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		w := stdout
		if len(args) == 0 {
			w = stderr
		}
		fmt.Fprintf(w, clusterUsage, nskube.CacheRoot(), strings.Join(nskube.AptPackages, " "), nskube.StateRoot())
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub := args[0]
	fs := flag.NewFlagSet("cluster "+sub, flag.ContinueOnError)
	name := fs.String("name", "pathcost", "cluster name")
	nodes := fs.Int("nodes", 2, "number of nodes (3: client, forward, server)")
	cni := fs.String("cni", nskube.CNIBridge, "CNI mode: bridge (routed pod CIDRs) or ptp (pod IPs from the VPC subnet)")
	version := fs.String("version", nskube.DefaultVersion, "Kubernetes version")
	stateRoot := fs.String("state", nskube.StateRoot(), "directory holding the clusters' files")
	binary := fs.String("binary", "", "load: static tcpload binary to make the image of (default: this program, if static)")
	ref := fs.String("ref", image.TCPLoadRef, "load: name of the tcpload image")
	fs.Usage = usageFunc(fs, "cluster "+sub+" [flags]", "The offline Kubernetes cluster (nskube); see tcpload cluster help.")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return exitCode(err)
	}
	if sub != "load" && len(pos) > 0 {
		return exitCode(usageErr("cluster %s: unexpected argument %q", sub, pos[0]))
	}
	if sub != "build" {
		if err := nskube.ValidName(*name); err != nil {
			return exitCode(usageErr("cluster %s: %v", sub, err))
		}
	}
	switch sub {
	case "build":
		dir, err := nskube.Build(ctx, nskube.BuildOptions{Version: *version, Out: stderr})
		if err != nil {
			return exitCode(fmt.Errorf("cluster build: %w", err))
		}
		fmt.Fprintln(stdout, dir)
		return 0
	case "up":
		st, err := nskube.Up(ctx, nskube.Options{Name: *name, Nodes: *nodes, CNI: *cni, Version: *version, StateRoot: *stateRoot, Out: stderr})
		if err != nil {
			return exitCode(fmt.Errorf("cluster up: %w", err))
		}
		printUp(st)
		return 0
	case "down":
		// not ctx: a signal must not leave half a cluster; main exits 130/143 once it is done
		if err := nskube.Down(context.Background(), *stateRoot, *name, stderr); err != nil {
			return exitCode(fmt.Errorf("cluster down: %w", err))
		}
		return 0
	case "status":
		c, err := nskube.Status(*stateRoot, *name)
		if err != nil {
			return exitCode(fmt.Errorf("cluster status: %w", err))
		}
		return printStatus(c)
	case "load":
		if err := loadImages(ctx, *stateRoot, *name, *binary, *ref, pos); err != nil {
			return exitCode(fmt.Errorf("cluster load: %w", err))
		}
		return 0
	}
	return exitCode(usageErr("cluster: unknown subcommand %q (try tcpload cluster help)", sub))
}

// printUp tells, on stderr, how to use the cluster; the kubeconfig path goes to stdout.
func printUp(st *nskube.State) {
	fmt.Fprintf(stderr, "cluster %s up in %.1fs: %d nodes (%s CNI)\n", st.Name, st.UpSeconds, len(st.Nodes), st.CNI)
	fmt.Fprintf(stderr, "use it from the host:\n  export KUBECONFIG=%s\n  %s get nodes -o wide\n", st.Kubeconfig, filepath.Join(st.BinDir, "kubectl"))
	fmt.Fprintf(stderr, "pod and node IPs are reachable from the VPC namespace:\n  nsenter --net=/proc/%d/ns/net ping %s\n", st.VPC, st.Nodes[0].IP)
	fmt.Fprintf(stderr, "stop it with: tcpload cluster down --name %s\n", st.Name)
	fmt.Fprintln(stdout, st.Kubeconfig)
}

// printStatus prints a cluster's status; the exit status is 1 when it is not healthy (or not
// running but left something behind).
func printStatus(c nskube.ClusterStatus) int {
	st := c.State
	if st == nil {
		if len(c.Leftovers) == 0 {
			fmt.Fprintf(stdout, "cluster %s: not running, nothing left on the host\n", c.Name)
			return 0
		}
		fmt.Fprintf(stdout, "cluster %s: no state, but left behind: %s\n", c.Name, strings.Join(c.Leftovers, "; "))
		return 1
	}
	fmt.Fprintf(stdout, "cluster %s (Kubernetes %s, %s CNI), up since %s\nkubeconfig: %s\nVPC namespace: /proc/%d/ns/net (API inside: %s; on the host: https://127.0.0.1:%d)\n",
		st.Name, st.Version, st.CNI, st.CreatedAt.Format(time.RFC3339), st.Kubeconfig, st.VPC, st.InternalAPI(), st.APIPort)
	for _, n := range st.Nodes {
		fmt.Fprintf(stdout, "  node %-20s %-12s pods %-15s %s=%s\n", n.Name, n.IP, n.PodCIDR, nskube.RoleLabel, n.Role)
	}
	for _, p := range c.Procs {
		state := "running"
		if !p.Running {
			state = "GONE"
		}
		fmt.Fprintf(stdout, "  %-8s %-24s %-20s %s\n", state, p.Name, p.Node, p.Log)
	}
	if c.KubeconfigMissing {
		fmt.Fprintf(stdout, "  kubeconfig %s is missing\n", st.Kubeconfig)
	}
	if !c.Healthy() {
		return 1
	}
	return 0
}

// loadImages imports image archives into every node of a running cluster; with none given it
// builds the tcpload image from a static tcpload binary (this program by default).
func loadImages(ctx context.Context, root, name, binary, ref string, archives []string) error {
	st, err := nskube.LoadState(root, name)
	if err != nil {
		return fmt.Errorf("cluster %s is not running: %w", name, err)
	}
	if len(archives) == 0 {
		if binary == "" {
			if binary, err = os.Executable(); err != nil {
				return err
			}
		}
		if !image.IsStatic(binary) {
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
		fmt.Fprintf(stderr, "image %s built from %s\n", ref, binary)
	}
	for _, a := range archives {
		if err := st.LoadImageArchive(ctx, a); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "loaded %s into %d nodes\n", a, len(st.Nodes))
	}
	return nil
}
