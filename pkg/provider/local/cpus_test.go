package local

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSplitCPUs(t *testing.T) {
	tests := []struct {
		name           string
		cpus           []int
		ok             bool
		server, client string
	}{
		{"one CPU: nothing to separate", []int{0}, false, "", ""},
		{"two", []int{0, 1}, true, "0", "1"},
		{"three: the client's node gets the odd one", []int{0, 1, 2}, true, "0", "1,2"},
		{"a cpuset with gaps", []int{2, 3, 6, 7}, true, "2,3", "6,7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := splitCPUs(tt.cpus)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.cpus, got.all)
			assert.Equal(t, tt.server, cpuList(got.server))
			assert.Equal(t, tt.client, cpuList(got.client))
		})
	}
}

func TestAllowedCPUs(t *testing.T) {
	cpus, err := allowedCPUs()
	assert.NoError(t, err)
	assert.NotEmpty(t, cpus, "this process runs on at least one CPU")
}
