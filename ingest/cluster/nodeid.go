package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// nodeIDFile is the file under the data directory that keeps the node id.
const nodeIDFile = "cluster-node-id"

// NodeID returns this node's id and keeps it in dir, so that a restarted
// node is the same member and gets its partitions back. The id is flag
// (--node-id) when set, else the id kept in dir, else hostname; a flag that
// differs from the kept id replaces it.
func NodeID(dir, flag, hostname string) (string, error) {
	path := filepath.Join(dir, nodeIDFile)
	kept, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	kept = bytes.TrimSpace(kept)
	id := flag
	switch {
	case id == "" && len(kept) > 0:
		return string(kept), nil
	case id == "":
		id = hostname
	case id == string(kept):
		return id, nil
	}
	if id == "" || len(id) > maxIDLen {
		return "", fmt.Errorf("node id %q must have 1 to %d bytes", id, maxIDLen)
	}
	if err := writeFileSync(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("keep node id: %w", err)
	}
	return id, nil
}

// writeFileSync writes a file durably: a temporary file, fsync, rename,
// fsync of the directory.
func writeFileSync(path string, data []byte) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
