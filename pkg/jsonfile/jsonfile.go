// Package jsonfile writes the JSON files pathcost leaves for people and other processes to read
// (result records, cluster state): indented, newline-terminated, and replaced atomically, so a
// reader never sees half a file.
package jsonfile

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Marshal encodes v as JSON indented by two spaces, with a final newline.
func Marshal(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return append(b, '\n'), nil
}

// Encode writes v to w as Marshal encodes it.
func Encode(w io.Writer, v any) error {
	b, err := Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Write writes v to path as Marshal encodes it, atomically (see Replace).
func Write(path string, v any) error {
	b, err := Marshal(v)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return Replace(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// Replace writes a file atomically, whatever its format: write fills a temporary file in the
// same directory, which is then renamed over path (mode 0644), so a reader never sees half a
// file and concurrent writers never write into one. On error nothing is left behind.
func Replace(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
