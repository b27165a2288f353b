package kube

import (
	"os"
	"testing"

	"github.com/pathcost/pathcost/pkg/cluster/nskube"
)

// TestMain: the nskube tests bring up clusters, which start a reaper that re-runs this binary.
func TestMain(m *testing.M) {
	if reaper, err := nskube.RunReaperIfAsked(); reaper {
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
