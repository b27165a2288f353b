package jsonfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteAndEncode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.json")
	v := map[string]any{"a": 1, "b": "<c>"}
	require.NoError(t, Write(path, v))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, Encode(&buf, v))
	assert.Equal(t, buf.String(), string(b), "the file and the stream hold the same bytes")
	assert.Equal(t, "{\n  \"a\": 1,\n  \"b\": \"\\u003cc\\u003e\"\n}\n", string(b))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())

	require.NoError(t, Write(path, []int{1}), "an existing file is replaced")
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "[\n  1\n]\n", string(b))
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 1, "no temporary file is left")
}

func TestWriteErrors(t *testing.T) {
	err := Write(filepath.Join(t.TempDir(), "missing", "x.json"), 1)
	assert.ErrorContains(t, err, "missing/x.json")
	err = Write(filepath.Join(t.TempDir(), "x.json"), func() {})
	assert.ErrorContains(t, err, "encode JSON")
	var buf bytes.Buffer
	assert.Error(t, Encode(&buf, make(chan int)))

	dir := t.TempDir()
	err = Replace(filepath.Join(dir, "x"), func(io.Writer) error { return errors.New("boom") })
	assert.ErrorContains(t, err, "boom")
	ents, _ := os.ReadDir(dir)
	assert.Empty(t, ents, "a failed Replace leaves no file")
}
