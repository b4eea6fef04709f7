package query

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite generated files")

// TestReference keeps docs/asl.md in step with the vocabularies.
func TestReference(t *testing.T) {
	var b bytes.Buffer
	if err := WriteReference(&b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "docs", "asl.md")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./query -run TestReference -update)", err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Errorf("docs/asl.md is out of date: run go test ./query -run TestReference -update")
	}
}
