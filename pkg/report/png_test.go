package report

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSVGRendersToPNG renders the fixture's chart with rsvg-convert (Debian's librsvg2-bin), as
// a browser or an image viewer would, and checks the picture: its size, and that the hatching
// of the saturated cost bar was drawn. PATHCOST_CHART_PNG=FILE keeps the PNG to look at.
func TestSVGRendersToPNG(t *testing.T) {
	conv, err := exec.LookPath("rsvg-convert")
	if err != nil {
		t.Skip("rsvg-convert not installed (apt-get install librsvg2-bin): the chart is not rendered")
	}
	var svg bytes.Buffer
	require.NoError(t, SVG(&svg, fixture(t)))
	dir := t.TempDir()
	in, out := filepath.Join(dir, "chart.svg"), filepath.Join(dir, "chart.png")
	require.NoError(t, os.WriteFile(in, svg.Bytes(), 0o644))
	cmd := exec.Command(conv, "--format", "png", "--output", out, in)
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "rsvg-convert: %s", msg)

	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	b := img.Bounds()
	assert.Equal(t, svgWidth, b.Dx())
	assert.Greater(t, b.Dy(), 2*panelHeight)

	// colSat (#c0392b) is used only by the saturated marking: hatch, outline and label
	red := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 > 0xa0 && g>>8 < 0x70 && bl>>8 < 0x60 {
				red++
			}
		}
	}
	assert.Greater(t, red, 200, "the saturated cost bar is hatched in red")

	if keep := os.Getenv("PATHCOST_CHART_PNG"); keep != "" {
		data, err := os.ReadFile(out)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(keep, data, 0o644))
	}
}
