package main

// The repository's own rules that no off-the-shelf linter expresses, run by
// `go test ./...` like any other test (pebble's internal/lint does the
// same): lint_files_test.go keeps build output out of git (no tracked file
// over 1 MB and no tracked executable, whatever its name); this file walks
// every Go file of the module and checks the mechanical rules of
// CONTRIBUTING.md: doc comments on exported names, no Type2-style names,
// typed atomics, panics that say BUG:, no os.Exit outside cmd/, goleak
// where goroutines start, commented sleeps in tests, forbidden imports.

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// pkgFiles is one package's parsed files, split into code and tests.
type pkgFiles struct {
	dir   string // relative to the module root
	code  []*ast.File
	tests []*ast.File
}

// parseTree parses every Go file under root (comments included), skipping
// testdata and hidden directories, grouped by directory.
func parseTree(t *testing.T, root string) (*token.FileSet, []*pkgFiles) {
	t.Helper()
	fset := token.NewFileSet()
	byDir := map[string]*pkgFiles{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		f, err := parser.ParseFile(fset, rel, mustRead(t, path), parser.ParseComments)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		dir := filepath.Dir(rel)
		p := byDir[dir]
		if p == nil {
			p = &pkgFiles{dir: dir}
			byDir[dir] = p
		}
		if strings.HasSuffix(path, "_test.go") {
			p.tests = append(p.tests, f)
		} else {
			p.code = append(p.code, f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []*pkgFiles
	for _, p := range byDir {
		pkgs = append(pkgs, p)
	}
	slices.SortFunc(pkgs, func(a, b *pkgFiles) int { return strings.Compare(a.dir, b.dir) })
	return fset, pkgs
}

// TestGrepRules checks, over the whole module, the rules of CONTRIBUTING.md
// that no linter expresses, as pebble's internal/lint does: typed atomics,
// panics that say BUG:, os.Exit and log.Fatal only in cmd/, no time.Sleep
// in a test without a comment on its line saying why (a synctest bubble's
// clock), and no deprecated or forbidden imports.
func TestGrepRules(t *testing.T) {
	t.Parallel()
	fset, pkgs := parseTree(t, moduleRoot(t))
	checkGrepRules(fset, pkgs, t.Errorf)
}

// checkGrepRules reports the violations of TestGrepRules in pkgs.
func checkGrepRules(fset *token.FileSet, pkgs []*pkgFiles, report func(format string, args ...any)) {
	for _, p := range pkgs {
		inCmd := p.dir == "cmd" || strings.HasPrefix(p.dir, "cmd"+string(filepath.Separator))
		for _, f := range slices.Concat(p.code, p.tests) {
			test := strings.HasSuffix(fset.File(f.Pos()).Name(), "_test.go")
			commented := map[int]bool{} // lines that carry a comment
			for _, cg := range f.Comments {
				for _, c := range cg.List {
					commented[fset.Position(c.Pos()).Line] = true
				}
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				switch path {
				case "io/ioutil", "github.com/pkg/errors", "github.com/stretchr/testify/assert":
					report("%s imports %s", fset.Position(imp.Pos()), path)
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				where := fset.Position(call.Pos())
				switch fn := call.Fun.(type) {
				case *ast.SelectorExpr:
					pkg, _ := fn.X.(*ast.Ident)
					if pkg == nil {
						return true
					}
					name := pkg.Name + "." + fn.Sel.Name
					switch {
					case pkg.Name == "atomic" && rawAtomic(fn.Sel.Name):
						report("%s: %s: use typed atomics (atomic.Int64 ...)", where, name)
					case (name == "os.Exit" || name == "log.Fatal" || name == "log.Fatalf" || name == "log.Fatalln") && !inCmd && !test:
						report("%s: %s outside cmd/", where, name)
					case name == "time.Sleep" && test && !commented[where.Line]:
						report("%s: time.Sleep in a test: wait for the condition, or run the test in a testing/synctest bubble and say so in a comment on the line", where)
					}
				case *ast.Ident:
					if fn.Name == "panic" && len(call.Args) == 1 && !test {
						if msg, ok := leadingString(call.Args[0]); ok && !strings.HasPrefix(msg, "BUG: ") {
							report("%s: panic(%q...): a panic is for a broken invariant and its message starts with \"BUG: \"; return an error otherwise", where, msg)
						}
					}
				}
				return true
			})
		}
	}
}

// rawAtomic reports whether name is one of sync/atomic's functions on
// plain integers and pointers (AddInt64, LoadUint32, StorePointer, ...),
// as opposed to the typed atomics' constructors.
func rawAtomic(name string) bool {
	for _, op := range []string{"Add", "Load", "Store", "Swap", "CompareAndSwap", "And", "Or"} {
		if rest, ok := strings.CutPrefix(name, op); ok && rest != "" && unicode.IsUpper(rune(rest[0])) {
			return true
		}
	}
	return false
}

// leadingString returns the string literal that e is or starts with
// ("msg", "msg" + x, fmt.Sprintf("msg", ...)), if any.
func leadingString(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			s, err := strconv.Unquote(e.Value)
			return s, err == nil
		}
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			return leadingString(e.X)
		}
	case *ast.CallExpr:
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok && len(e.Args) > 0 {
			if pkg, ok := sel.X.(*ast.Ident); ok && (pkg.Name == "fmt" && sel.Sel.Name == "Sprintf" || pkg.Name == "errors" && sel.Sel.Name == "New" || pkg.Name == "fmt" && sel.Sel.Name == "Errorf") {
				return leadingString(e.Args[0])
			}
		}
	}
	return "", false
}

// TestDocComments requires a doc comment on every package and on every
// exported name outside tests, starting with the name (optionally after
// "A", "An" or "The"), as godoc and revive's exported rule want. A const or
// var group may share its group's comment.
func TestDocComments(t *testing.T) {
	t.Parallel()
	fset, pkgs := parseTree(t, moduleRoot(t))
	checkDocComments(fset, pkgs, t.Errorf)
}

// checkDocComments reports the violations of TestDocComments in pkgs.
func checkDocComments(fset *token.FileSet, pkgs []*pkgFiles, report func(format string, args ...any)) {
	for _, p := range pkgs {
		if len(p.code) == 0 {
			continue
		}
		hasPkgDoc := false
		for _, f := range p.code {
			if f.Doc != nil {
				hasPkgDoc = true
			}
		}
		if !hasPkgDoc {
			report("%s: package %s has no package comment (put it in doc.go)", p.dir, p.code[0].Name.Name)
		}
		contracts := interfaceMethods(p.code)
		for _, f := range p.code {
			checkDocs(fset, f, contracts, report)
		}
	}
}

// documentedElsewhere are methods whose contract is a standard interface's
// (fmt.Stringer, error, http.Handler, json and text marshalling): a comment
// would only repeat it.
var documentedElsewhere = map[string]bool{
	"String": true, "Error": true, "Unwrap": true, "ServeHTTP": true,
	"MarshalJSON": true, "UnmarshalJSON": true, "MarshalText": true, "UnmarshalText": true,
}

// interfaceMethods returns the names of the methods of the interfaces the
// package declares. A method of that name implements the interface, whose
// doc comment is the contract, so the method needs no comment of its own
// (the AST nodes of query/expr implement TimeSeriesExpr a dozen times).
func interfaceMethods(files []*ast.File) map[string]bool {
	names := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if it, ok := n.(*ast.InterfaceType); ok {
				for _, m := range it.Methods.List {
					for _, name := range m.Names {
						names[name.Name] = true
					}
				}
			}
			return true
		})
	}
	return names
}

// checkDocs reports the exported declarations of f that lack a doc
// comment starting with their name. Methods that implement an interface of
// contracts or a standard one are exempt.
func checkDocs(fset *token.FileSet, f *ast.File, contracts map[string]bool, report func(format string, args ...any)) {
	main := f.Name.Name == "main"
	check := func(pos token.Pos, name string, doc *ast.CommentGroup) {
		if !ast.IsExported(name) || main {
			return
		}
		if doc == nil {
			report("%s: exported %s has no doc comment", fset.Position(pos), name)
			return
		}
		text := doc.Text()
		for _, article := range []string{"A ", "An ", "The "} {
			text = strings.TrimPrefix(text, article)
		}
		if !strings.HasPrefix(text, name) {
			first, _, _ := strings.Cut(doc.Text(), "\n")
			report("%s: the doc comment of %s should start with its name: %q", fset.Position(pos), name, first)
		}
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv != nil && (!exportedReceiver(d.Recv) || d.Doc == nil && (contracts[d.Name.Name] || documentedElsewhere[d.Name.Name])) {
				continue
			}
			check(d.Pos(), d.Name.Name, d.Doc)
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					doc := s.Doc
					if doc == nil && !d.Lparen.IsValid() {
						doc = d.Doc
					}
					check(s.Pos(), s.Name.Name, doc)
				case *ast.ValueSpec:
					if s.Doc != nil || d.Doc != nil && d.Lparen.IsValid() {
						continue // its own comment, or the group's
					}
					for _, n := range s.Names {
						if s.Comment != nil && d.Lparen.IsValid() {
							continue // a line comment inside a group
						}
						check(n.Pos(), n.Name, d.Doc)
					}
				}
			}
		}
	}
}

// exportedReceiver reports whether a method's receiver type is exported,
// so that its methods show in the package's documentation.
func exportedReceiver(recv *ast.FieldList) bool { return ast.IsExported(recvName(recv)) }

// TestNoNumberedCopies fails on a declared name that is another declared
// name of the same package plus a number (Encode and Encode2, parseV and
// parseV3): a second version beside the first instead of changing the API
// in place and migrating its callers.
func TestNoNumberedCopies(t *testing.T) {
	t.Parallel()
	fset, pkgs := parseTree(t, moduleRoot(t))
	checkNumberedCopies(fset, pkgs, t.Errorf)
}

// checkNumberedCopies reports the violations of TestNoNumberedCopies in pkgs.
func checkNumberedCopies(fset *token.FileSet, pkgs []*pkgFiles, report func(format string, args ...any)) {
	for _, p := range pkgs {
		declared := map[string]token.Pos{}
		for _, f := range p.code {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					name := d.Name.Name
					if d.Recv != nil {
						name = recvName(d.Recv) + "." + name
					}
					declared[name] = d.Pos()
				case *ast.GenDecl:
					for _, s := range d.Specs {
						switch s := s.(type) {
						case *ast.TypeSpec:
							declared[s.Name.Name] = s.Pos()
						case *ast.ValueSpec:
							for _, n := range s.Names {
								declared[n.Name] = n.Pos()
							}
						}
					}
				}
			}
		}
		for name, pos := range declared {
			stem := strings.TrimRightFunc(name, unicode.IsDigit)
			if stem == name || stem == "" || strings.HasSuffix(stem, ".") {
				continue
			}
			if _, ok := declared[stem]; ok {
				report("%s: %s is a numbered copy of %s: change %s in place and migrate its callers", fset.Position(pos), name, stem, stem)
			}
		}
	}
}

// recvName is the name of a method's receiver type.
func recvName(recv *ast.FieldList) string {
	if len(recv.List) == 0 {
		return ""
	}
	typ := recv.List[0].Type
	for {
		switch e := typ.(type) {
		case *ast.StarExpr:
			typ = e.X
		case *ast.IndexExpr:
			typ = e.X
		case *ast.IndexListExpr:
			typ = e.X
		case *ast.Ident:
			return e.Name
		default:
			return ""
		}
	}
}

// TestGoleakWhereGoroutinesStart requires a goleak check in the tests of
// every package whose code starts goroutines (a go statement, or
// sync.WaitGroup.Go / errgroup's Go).
func TestGoleakWhereGoroutinesStart(t *testing.T) {
	t.Parallel()
	fset, pkgs := parseTree(t, moduleRoot(t))
	checkGoleak(fset, pkgs, t.Errorf)
}

// checkGoleak reports the violations of TestGoleakWhereGoroutinesStart in pkgs.
func checkGoleak(fset *token.FileSet, pkgs []*pkgFiles, report func(format string, args ...any)) {
	for _, p := range pkgs {
		var starts token.Pos
		for _, f := range p.code {
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.GoStmt:
					starts = n.Pos()
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Go" && len(n.Args) == 1 {
						if _, ok := n.Args[0].(*ast.FuncLit); ok {
							starts = n.Pos()
						}
					}
				}
				return !starts.IsValid()
			})
			if starts.IsValid() {
				break
			}
		}
		if !starts.IsValid() {
			continue
		}
		leak := false
		for _, f := range p.tests {
			for _, imp := range f.Imports {
				if imp.Path.Value == `"go.uber.org/goleak"` {
					leak = true
				}
			}
		}
		if !leak {
			report("%s: starts a goroutine but its tests have no goleak check (add a TestMain with goleak.VerifyTestMain)", fset.Position(starts))
		}
	}
}

// TestChecksCatch runs every check on testdata/bad, a package that breaks
// each rule once, so that the checks above cannot pass by seeing nothing.
func TestChecksCatch(t *testing.T) {
	t.Parallel()
	fset, pkgs := parseTree(t, filepath.Join("testdata", "lint", "bad"))
	var got []string
	collect := func(format string, args ...any) { got = append(got, fmt.Sprintf(format, args...)) }
	checkGrepRules(fset, pkgs, collect)
	checkDocComments(fset, pkgs, collect)
	checkNumberedCopies(fset, pkgs, collect)
	checkGoleak(fset, pkgs, collect)
	want := []string{
		"bad.go:14:2: atomic.AddInt64: use typed atomics",
		"bad.go:15:2: os.Exit outside cmd/",
		`bad.go:16:2: panic("oops"...)`,
		`bad.go:17:2: panic("bad value: "...)`,
		"package bad has no package comment",
		"bad.go:20:1: exported Undocumented has no doc comment",
		`bad.go:23:1: the doc comment of Misnamed should start with its name: "Does things."`,
		"bad.go:26:1: Parse2 is a numbered copy of Parse",
		"bad.go:9:2: starts a goroutine but its tests have no goleak check",
		"bad_test.go:10:2: time.Sleep in a test",
	}
	for _, w := range want {
		found := slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) })
		if !found {
			t.Errorf("no finding %q", w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d findings, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}
