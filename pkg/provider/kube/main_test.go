package kube

import (
	"os"
	"testing"

	"github.com/pathcost/pathcost/pkg/cluster/nskube"
)

// TestMain: the nskube tests bring up clusters, which start a reaper that re-runs this binary.
func TestMain(m *testing.M) { os.Exit(nskube.RunTests(m)) }
