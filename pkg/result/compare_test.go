package result

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCompare(t *testing.T) {
	old := Summary{Rows: []Row{
		{Scenario: "plain", ClientMbps: Stat{N: 3, Median: 3000, Min: 2900, Max: 3100, Mean: 3000},
			ServerCores: Stat{N: 3, Median: 0.4, Min: 0.35, Max: 0.45, Mean: 0.4}},
		{Scenario: "gone", ClientMbps: Stat{N: 1, Median: 10, Min: 10, Max: 10, Mean: 10}},
		{Scenario: "zero", ClientMbps: Stat{N: 1, Median: 0, Min: 0, Max: 0}},
	}}
	new := Summary{Rows: []Row{
		{Scenario: "added", ClientMbps: Stat{N: 1, Median: 5, Min: 5, Max: 5, Mean: 5}},
		{Scenario: "plain", ClientMbps: Stat{N: 3, Median: 2400, Min: 2300, Max: 2500, Mean: 2400},
			ServerCores: Stat{N: 3, Median: 0.42, Min: 0.4, Max: 0.5, Mean: 0.42}},
		{Scenario: "zero", ClientMbps: Stat{N: 1, Median: 7, Min: 7, Max: 7}},
	}}
	ds := Compare(old, new)
	byKey := map[string]Delta{}
	for _, d := range ds {
		byKey[d.Scenario+"/"+d.Figure] = d
	}
	require.Len(t, ds, 5)
	assert.Equal(t, []string{"plain", "plain", "gone", "zero", "added"}, []string{ds[0].Scenario, ds[1].Scenario, ds[2].Scenario, ds[3].Scenario, ds[4].Scenario})

	bw := byKey["plain/client_mbps"]
	require.NotNil(t, bw.ChangePct)
	assert.InDelta(t, -20, *bw.ChangePct, 1e-9)
	assert.False(t, bw.Overlap)
	assert.True(t, bw.Significant())

	cores := byKey["plain/server_cores"]
	assert.True(t, cores.Overlap)
	assert.False(t, cores.Significant())
	assert.InDelta(t, 5, *cores.ChangePct, 1e-9)

	assert.Equal(t, "old", byKey["gone/client_mbps"].Only)
	assert.Equal(t, "new", byKey["added/client_mbps"].Only)
	assert.Nil(t, byKey["zero/client_mbps"].ChangePct, "no percentage from a zero old median")

	var buf bytes.Buffer
	require.NoError(t, WriteDeltas(&buf, ds))
	out := buf.String()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Len(t, lines, 6)
	assert.Regexp(t, `^scenario\s+figure\s+old\s+new\s+change\s+verdict$`, lines[0])
	assert.Regexp(t, `^plain\s+client Mbps\s+3000 \(2900–3100\)\s+2400 \(2300–2500\)\s+-20\.0%\s+CHANGED$`, lines[1])
	assert.Contains(t, out, "noise")
	assert.Contains(t, out, "only in old")
	assert.Contains(t, out, "n/a")

	assert.Empty(t, Compare(Summary{}, Summary{}))
}
