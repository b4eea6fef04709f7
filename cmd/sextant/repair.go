package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/sextant-dev/sextant/tsdb/wal"
)

// repair runs `sextant repair --data-dir DIR`: with the server stopped, it
// sets aside every damaged region of the write-ahead log (a copy in
// <segment>.<offset>.quarantine) and keeps every valid record before and
// after it, so that the next start replays them. It returns the exit code.
func repair(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("repair", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "./sextant-data", "the data directory of a stopped server")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	dmg, err := wal.Repair(filepath.Join(*dataDir, "wal"), nil)
	for _, d := range dmg {
		fmt.Fprintf(stdout, "quarantined %d bytes of %s at byte offset %d into %s\n", d.Length, d.File, d.Offset, d.Quarantine)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sextant repair: %v\n", err)
		return 1
	}
	if len(dmg) == 0 {
		fmt.Fprintln(stdout, "the write-ahead log is intact; nothing to repair")
	}
	return 0
}
