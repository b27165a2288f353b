//go:build smoke

// Package smoke runs pathcost's Kubernetes smoke test on a real cluster: by default one made here
// by the nskube provider (real Kubernetes, nodes as network namespaces, no Docker, no registry):
//
//	go test -tags smoke -v -timeout 60m ./e2e/smoke -args -provider nskube
//
// The first run builds the Kubernetes binaries (~30 min on 2 cores) into /var/cache/pathcost.
// -provider kubeconfig uses an existing cluster (--kubeconfig) whose nodes carry tcprole=client
// and tcprole=server labels and which can run the image given by -image.
package smoke

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/envfuncs"

	"github.com/pathcost/pathcost/pkg/cluster/nskube"
	"github.com/pathcost/pathcost/pkg/image"
	"github.com/pathcost/pathcost/pkg/interrupt"
	"github.com/pathcost/pathcost/pkg/provider/kube"
	"github.com/pathcost/pathcost/pkg/units"
)

var (
	testenv env.Environment

	providerFlag = flag.String("provider", "nskube", "cluster provider: nskube (built here) or kubeconfig (an existing cluster)")
	nodesFlag    = flag.Int("nodes", 2, "nskube: number of nodes (3: client, forward, server)")
	cniFlag      = flag.String("cni", nskube.CNIBridge, "nskube: CNI mode, bridge or ptp")
	imageFlag    = flag.String("image", image.TCPLoadRef, "tcpload image (built from ./cmd/tcpload and loaded into the nodes with nskube)")
	logsFlag     = flag.String("logs", "", "export the cluster's logs into this directory at the end")
	durationFlag = new(time.Duration) // -duration: units.Duration, as every duration flag parses

	// provider is set for -provider nskube.
	provider *nskube.Provider
	// hostBefore is the host's state before the cluster existed.
	hostBefore nskube.HostSnapshot
	// finishErr: e2e-framework only logs (at -v=2) what Finish steps return, so the checks that
	// must fail the run keep their error here and TestMain turns it into the exit status.
	finishErr error
	// imageDir holds the built tcpload binary and image archive.
	imageDir string
)

func init() {
	units.DurationVar(flag.CommandLine, durationFlag, "duration", 3*time.Second, "measurement window of each tcpload run (10, 3s, 1m)")
}

// clusterName is unique per run, so that runs on one machine (two CI jobs, a developer and CI) do
// not meet: every name, cgroup and directory of an nskube cluster derives from it.
var clusterName = envconf.RandomName("smoke", 10)

func TestMain(m *testing.M) {
	// First: Create re-executes this test binary as the cluster's reaper.
	if reaper, err := nskube.RunReaperIfAsked(); reaper {
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	cfg, err := envconf.NewFromFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	testenv = env.NewWithConfig(cfg)
	ns := envconf.RandomName("smoke", 12)
	switch *providerFlag {
	case "nskube":
		if err := nskube.Requirements(); err != nil {
			fmt.Fprintf(os.Stderr, "smoke: %v (make e2e-smoke installs them as root)\n", err)
			os.Exit(1)
		}
		provider = nskube.NewProvider(nskube.WithNodes(*nodesFlag), nskube.WithCNI(*cniFlag), nskube.WithStateRoot(os.Getenv("PATHCOST_STATE")),
			nskube.WithSignalHandler(func(sig os.Signal, err error) {
				if err != nil {
					fmt.Fprintf(os.Stderr, "smoke: %v: teardown: %v\n", sig, err)
				}
				os.Exit(interrupt.ExitCode(sig))
			}))
		var archive string
		testenv.Setup(
			func(ctx context.Context, c *envconf.Config) (context.Context, error) {
				var err error
				if hostBefore, err = nskube.TakeHostSnapshot(); err != nil {
					return ctx, err
				}
				t0 := time.Now()
				archive, err = buildTCPLoadImage(ctx, *imageFlag)
				fmt.Printf("smoke: tcpload image %s built in %.1fs\n", archive, time.Since(t0).Seconds())
				return ctx, err
			},
			timed("cluster up", envfuncs.CreateCluster(provider, clusterName)),
			func(ctx context.Context, c *envconf.Config) (context.Context, error) {
				return envfuncs.LoadImageArchiveToCluster(clusterName, archive)(ctx, c)
			},
		)
	case "kubeconfig":
		// cfg already points at --kubeconfig (or $KUBECONFIG).
	default:
		fmt.Fprintf(os.Stderr, "smoke: unknown -provider %q\n", *providerFlag)
		os.Exit(2)
	}
	testenv.Setup(envfuncs.CreateNamespace(ns), waitDefaultServiceAccount(ns))
	testenv.Finish(timed("namespace deleted", envfuncs.DeleteNamespace(ns)))
	if provider != nil {
		if *logsFlag != "" {
			testenv.Finish(envfuncs.ExportClusterLogs(clusterName, *logsFlag))
		}
		testenv.Finish(
			timed("cluster down", func(ctx context.Context, c *envconf.Config) (context.Context, error) {
				ctx, err := envfuncs.DestroyCluster(clusterName)(ctx, c)
				if err != nil {
					finishErr = err
				}
				return ctx, err
			}),
			checkNothingLeft,
		)
	}
	code := testenv.Run(m)
	if imageDir != "" {
		os.RemoveAll(imageDir)
	}
	if finishErr != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", finishErr)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// waitDefaultServiceAccount waits for the namespace's default ServiceAccount (pods are refused
// until the controller-manager has made it).
func waitDefaultServiceAccount(ns string) env.Func {
	return func(ctx context.Context, c *envconf.Config) (context.Context, error) {
		cs, err := kubernetes.NewForConfig(c.Client().RESTConfig())
		if err != nil {
			return ctx, err
		}
		for i := 0; i < 300; i++ {
			if _, err = cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
				return ctx, nil
			}
			time.Sleep(200 * time.Millisecond)
		}
		return ctx, fmt.Errorf("smoke: no default ServiceAccount in %s: %w", ns, err)
	}
}

func timed(what string, f env.Func) env.Func {
	return func(ctx context.Context, c *envconf.Config) (context.Context, error) {
		t0 := time.Now()
		ctx, err := f(ctx, c)
		fmt.Printf("smoke: %s: %.1fs\n", what, time.Since(t0).Seconds())
		if err != nil {
			fmt.Printf("smoke: %s: %v\n", what, err)
		}
		return ctx, err
	}
}

// checkNothingLeft fails the run if the cluster left anything on the host: its processes, cgroups,
// directory, or any change to the root namespace's iptables, links, routes, mounts or sysctls.
func checkNothingLeft(ctx context.Context, c *envconf.Config) (context.Context, error) {
	var problems []string
	left, err := nskube.Leftovers(os.Getenv("PATHCOST_STATE"), clusterName)
	if err != nil {
		problems = append(problems, err.Error())
	}
	problems = append(problems, left...)
	if hostAfter, err := nskube.TakeHostSnapshot(); err != nil {
		problems = append(problems, err.Error())
	} else {
		problems = append(problems, hostBefore.Diff(hostAfter, nskube.OthersNetns)...)
	}
	if len(problems) > 0 {
		finishErr = fmt.Errorf("smoke: after Destroy the host is not as before:\n  %s", strings.Join(problems, "\n  "))
		return ctx, fmt.Errorf("smoke: after Destroy the host is not as before:\n  %s", strings.Join(problems, "\n  "))
	}
	fmt.Println("smoke: after Destroy nothing is left (processes, cgroups, directory, mounts, netns, root-namespace iptables/links/routes, sysctls)")
	return ctx, nil
}

// buildTCPLoadImage builds the static tcpload binary from this module and an image archive of it.
func buildTCPLoadImage(ctx context.Context, ref string) (string, error) {
	dir, err := os.MkdirTemp("", "pathcost-smoke-image-")
	if err != nil {
		return "", err
	}
	imageDir = dir
	return kube.BuildImageArchive(ctx, dir, ref)
}
