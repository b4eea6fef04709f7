package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// commentFloor is the least share of comment lines STYLE.md §9 asks of
// tsdb/ and query/ (15–25 %), checked on each tree's total: a small
// package may be mostly code, but a tree may not drift below the floor.
const commentFloor = 0.15

// commentShare counts, in the non-test Go files under dir (testdata
// excluded), the non-blank lines and those whose trimmed text starts with
// "//", per package directory. This is the measure of issue #9: doc
// comments and line comments count, a comment after code on the same line
// does not, and /* */ blocks (which the code does not use) do not.
func commentShare(t *testing.T, dir string) map[string][2]int {
	t.Helper()
	per := map[string][2]int{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		n := per[filepath.Dir(path)]
		sc := bufio.NewScanner(bytes.NewReader(mustRead(t, path)))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			switch line := strings.TrimSpace(sc.Text()); {
			case line == "":
			case strings.HasPrefix(line, "//"):
				n[0]++
				n[1]++
			default:
				n[1]++
			}
		}
		per[filepath.Dir(path)] = n
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return per
}

// TestCommentShare reports the share of comment lines of each package of
// tsdb/ and query/ (go test -run CommentShare -v ./cmd/sextant prints
// them) and fails when either tree's total is below commentFloor.
func TestCommentShare(t *testing.T) {
	t.Parallel()
	for _, top := range []string{"tsdb", "query"} {
		per := commentShare(t, filepath.Join("..", "..", top))
		dirs := make([]string, 0, len(per))
		for d := range per {
			dirs = append(dirs, d)
		}
		slices.Sort(dirs)
		var total [2]int
		for _, d := range dirs {
			n := per[d]
			total[0] += n[0]
			total[1] += n[1]
			rel, _ := filepath.Rel(filepath.Join("..", ".."), d)
			t.Log(shareLine(rel, n))
		}
		t.Log(shareLine(top+"/ total", total))
		if share := float64(total[0]) / float64(total[1]); share < commentFloor {
			t.Errorf("%s/ has %.1f %% comment lines, below the %.0f %% of STYLE.md §9", top, 100*share, 100*commentFloor)
		}
	}
}

// shareLine formats one row of the report: comment lines of non-blank lines.
func shareLine(what string, n [2]int) string {
	return fmt.Sprintf("%-16s %5d of %5d lines are comments: %4.1f %%", what, n[0], n[1], 100*float64(n[0])/float64(max(n[1], 1)))
}
