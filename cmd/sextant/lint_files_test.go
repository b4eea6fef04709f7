package main

import (
	"bytes"
	byteorder "encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// maxTrackedSize is the largest file git may track. The biggest legitimate
// files (golden SVGs, the conformance vectors, docs/asl.md) are well under
// 200 kB; anything over 1 MB is build output or a data dump that belongs
// outside the repository.
const maxTrackedSize = 1 << 20

// TestNoBinariesTracked fails on any file git tracks that is an executable
// (ELF, Mach-O or PE, whatever its name: `go test -c` writes `pkg.test`,
// `go build` writes a bare name) or larger than maxTrackedSize. It skips
// when the tree is not a git checkout (a source tarball), since then there
// is nothing tracked to check.
func TestNoBinariesTracked(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	files := trackedFiles(t, root)
	if len(files) == 0 {
		t.Fatal("git ls-files listed no files")
	}
	for _, name := range files {
		path := filepath.Join(root, name)
		fi, err := os.Lstat(path)
		if err != nil {
			// Deleted in the work tree but not yet from the index: git
			// would not commit it as it is, so there is nothing to judge.
			continue
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if fi.Size() > maxTrackedSize {
			t.Errorf("%s: %d bytes tracked by git (limit %d): build output or data belongs outside the repository", name, fi.Size(), maxTrackedSize)
		}
		if kind := executableKind(t, path); kind != "" {
			t.Errorf("%s: %s executable tracked by git: remove it (git rm --cached) and ignore it", name, kind)
		}
	}
}

// TestExecutableKind checks the detector on the headers of each format, so
// that TestNoBinariesTracked cannot pass by never recognising anything.
func TestExecutableKind(t *testing.T) {
	t.Parallel()
	pe := make([]byte, 0x90)
	copy(pe, "MZ")
	byteorder.LittleEndian.PutUint32(pe[0x3c:], 0x80)
	copy(pe[0x80:], "PE\x00\x00")
	notPE := bytes.Clone(pe)
	copy(notPE[0x80:], "XX")
	f := func(name string, header []byte, want string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, header, 0o644); err != nil {
			t.Fatal(err)
		}
		if got := executableKind(t, path); got != want {
			t.Errorf("executableKind(%s) = %q, want %q", name, got, want)
		}
	}
	f("elf", []byte("\x7fELF\x02\x01\x01\x00rest"), "ELF")
	f("macho64", []byte{0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1}, "Mach-O")
	f("macho32be", []byte{0xfe, 0xed, 0xfa, 0xce, 0, 0, 0, 7}, "Mach-O")
	f("fat", []byte{0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2}, "Mach-O")
	f("pe", pe, "PE")
	f("mz-text", notPE, "")
	f("text", []byte("package main\n"), "")
	f("empty", nil, "")
	f("short", []byte("MZ"), "")

	// A real one: the test binary that is running now.
	if exe, err := os.Executable(); err == nil {
		if got := executableKind(t, exe); got == "" {
			t.Errorf("executableKind(%s) = \"\", want the running test binary recognised", exe)
		}
	}
}

// executableKind returns "ELF", "Mach-O" or "PE" when the file starts with
// that format's magic number, and "" otherwise. PE is recognised by the
// "PE\0\0" signature that the MZ header points to, so a text file that
// happens to start with "MZ" is not an executable.
func executableKind(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 64)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		t.Fatalf("read %s: %v", path, err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		return "ELF"
	case len(head) >= 4 && isMachO(byteorder.BigEndian.Uint32(head)):
		return "Mach-O"
	case len(head) >= 0x40 && bytes.HasPrefix(head, []byte("MZ")):
		off := int64(byteorder.LittleEndian.Uint32(head[0x3c:]))
		sig := make([]byte, 4)
		if _, err := f.ReadAt(sig, off); err == nil && string(sig) == "PE\x00\x00" {
			return "PE"
		}
	}
	return ""
}

// isMachO reports whether magic (read big-endian) is a Mach-O magic number
// in either byte order, 32 or 64 bits, or a universal ("fat") binary.
func isMachO(magic uint32) bool {
	switch magic {
	case 0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe, 0xbebafeca:
		return true
	}
	return false
}

// trackedFiles returns the paths git tracks under root, relative to it. It
// skips t when git is missing or root is not a git checkout.
func trackedFiles(t *testing.T, root string) []string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed: cannot list tracked files")
	}
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): no tracked files to check", err)
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}

// moduleRoot returns the directory holding go.mod, two levels up.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	return root
}

// mustRead returns the contents of path.
func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
