package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/pathcost/pathcost/pkg/image"
)

func init() { subcommands["image"] = runImage }

const imageUsage = `usage: tcpload image push REF [--binary PATH] [--insecure]
       tcpload image archive FILE [--binary PATH] [--ref REF]

push     builds the tcpload image (one layer: the static tcpload binary as
         /usr/local/bin/tcpload, its entrypoint) and pushes it to REF, with the
         credentials of your docker config (docker login / credential helpers);
         then run the suite with -provider kubeconfig -image REF
archive  writes the image as a docker-format tarball (kind load image-archive,
         docker load, ctr images import)

The binary is this program unless --binary names another; it must be static
(CGO_ENABLED=0 go build ./cmd/tcpload, as make build does).
`

// runImage is `tcpload image push|archive`: the tcpload image without a container engine.
func runImage(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, imageUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub := args[0]
	if sub != "push" && sub != "archive" {
		return exitCode(usageErr("image: unknown subcommand %q (push or archive)", sub))
	}
	fs := flag.NewFlagSet("image "+sub, flag.ContinueOnError)
	binary := fs.String("binary", "", "static tcpload binary to put in the image (default: this program)")
	ref := fs.String("ref", image.TCPLoadRef, "archive: the image's name")
	insecure := fs.Bool("insecure", false, "push: allow a registry over plain HTTP")
	fs.Usage = func() { fmt.Fprint(stderr, imageUsage) }
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return exitCode(err)
	}
	if len(pos) != 1 {
		return exitCode(usageErr("image %s: want exactly one %s", sub, map[string]string{"push": "REF", "archive": "FILE"}[sub]))
	}
	bin := *binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return exitCode(fmt.Errorf("image: this program's path: %w", err))
		}
		bin = exe
	}
	if !image.IsStatic(bin) {
		return exitCode(usageErr("image: %s is not a static binary and would not run in the image; build one with CGO_ENABLED=0 go build -o tcpload ./cmd/tcpload and pass --binary", bin))
	}
	target := pos[0]
	switch sub {
	case "push":
		if err := image.Push(ctx, image.TCPLoad(bin, target), target, *insecure); err != nil {
			fmt.Fprintf(stderr, "tcpload image push %s: %v\n", target, err)
			return 1
		}
		fmt.Fprintf(stdout, "pushed %s (tcpload from %s)\n", target, bin)
	case "archive":
		if err := image.WriteArchive(image.TCPLoad(bin, *ref), target); err != nil {
			fmt.Fprintf(stderr, "tcpload image archive %s: %v\n", target, err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s (image %s, tcpload from %s)\n", target, *ref, bin)
	}
	return 0
}
