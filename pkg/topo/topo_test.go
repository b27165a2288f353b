package topo

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScenarios(t *testing.T) {
	require.Equal(t, []string{"plain", "gr", "gr+istio", "vpccni", "vpccni+istio", "nodeport"}, Names())
	for i, s := range All {
		assert.NoError(t, s.Validate(), s.Name)
		assert.Equal(t, i+1, s.Seed, s.Name)
	}
	s, err := ByName("vpccni+istio")
	require.NoError(t, err)
	assert.True(t, s.Istio)
	_, err = ByName("calico")
	assert.ErrorContains(t, err, `unknown scenario "calico"`)
}

func TestPod(t *testing.T) {
	tests := []struct {
		kind  Kind
		istio bool
		want  string
		err   string
	}{
		{KindGR, false, "gr", ""},
		{KindGR, true, "gr+istio", ""},
		{KindVPCCNI, false, "vpccni", ""},
		{KindVPCCNI, true, "vpccni+istio", ""},
		{KindNodePort, false, "", "no pod scenario"},
		{KindPlain, true, "", "no pod scenario"},
	}
	for _, tt := range tests {
		s, err := Pod(tt.kind, tt.istio)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, s.Name)
	}
}

func TestValidate(t *testing.T) {
	assert.ErrorContains(t, Spec{Name: "x", Kind: "calico"}.Validate(), "unknown kind")
	assert.ErrorContains(t, Spec{Name: "x", Kind: KindNodePort, Istio: true}.Validate(), "sidecars compose")
	assert.ErrorContains(t, Spec{Kind: KindPlain}.Validate(), "no name")
}
