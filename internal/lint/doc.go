// Package lint holds no code: its tests are the repository's own rules that
// no off-the-shelf linter expresses, run by `go test ./...` like any other
// test, the way pebble's internal/lint does.
//
// files_test.go keeps build output out of git: no tracked file over 1 MB and
// no tracked executable (ELF, Mach-O or PE), whatever its name. style_test.go
// walks every Go file of the module and checks the rules of CONTRIBUTING.md
// that are mechanical: doc comments on exported names, no `Type2`-style
// names, typed atomics, panics that say BUG:, no os.Exit outside cmd/, and
// the forbidden imports.
//
// The package lives under internal/ because it is tooling of this
// repository, not part of Sextant: nothing imports it.
package lint
