package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLint checks, over the whole module, the rules of STYLE.md that no
// linter expresses, as pebble's internal/lint does.
func TestLint(t *testing.T) {
	t.Parallel()
	root, _ := filepath.Abs("../..")
	fset := token.NewFileSet()
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		test := strings.HasSuffix(path, "_test.go")
		inCmd := strings.HasPrefix(rel, "cmd"+string(os.PathSeparator))
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			switch p {
			case "io/ioutil", "github.com/pkg/errors", "github.com/stretchr/testify/assert":
				t.Errorf("%s imports %s", rel, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			pos := fset.Position(call.Pos())
			where := rel + ":" + strconv.Itoa(pos.Line)
			switch fn := call.Fun.(type) {
			case *ast.SelectorExpr:
				pkg, _ := fn.X.(*ast.Ident)
				if pkg == nil {
					return true
				}
				name := pkg.Name + "." + fn.Sel.Name
				switch {
				case pkg.Name == "atomic" && (strings.HasPrefix(fn.Sel.Name, "Add") || strings.HasPrefix(fn.Sel.Name, "Load") ||
					strings.HasPrefix(fn.Sel.Name, "Store") || strings.HasPrefix(fn.Sel.Name, "CompareAndSwap")):
					t.Errorf("%s: %s: use typed atomics (atomic.Int64 ...)", where, name)
				case (name == "os.Exit" || name == "log.Fatal" || name == "log.Fatalf") && !inCmd && !test:
					t.Errorf("%s: %s outside cmd/", where, name)
				}
			case *ast.Ident:
				if fn.Name == "panic" && len(call.Args) == 1 && !test {
					if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING && !strings.HasPrefix(lit.Value, `"BUG: `) {
						t.Errorf("%s: panic with a message that does not start with BUG:", where)
					}
				}
			}
			return true
		})
		return nil
	})
}
