package query

import (
	"fmt"
	"io"
	"strings"

	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/stack"
)

// WriteReference writes the stack language reference (docs/asl.md) in
// Markdown from the vocabularies: every word's signature, summary and
// examples with what each example leaves on the stack.
func WriteReference(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# Stack language reference\n\n")
	b.WriteString("<!-- Generated from the vocabularies in query/expr by `go test ./query -run TestReference -update`. Do not edit. -->\n\n")
	b.WriteString("A program is a comma-separated list of tokens; words start with a colon and act on the stack. ")
	b.WriteString("Each example below is the stack a word is applied to, followed by the word, and what it leaves (bottom first). ")
	b.WriteString("See [the graph API](graph.md) for how expressions become charts.\n\n")
	ids := map[*stack.Word]string{}
	seen := map[string]int{}
	for _, v := range expr.Vocabularies {
		for _, wd := range v.Words {
			id := v.Name + "-" + anchor(wd.Name)
			if seen[id]++; seen[id] > 1 {
				id = fmt.Sprintf("%s-%d", id, seen[id]) // an overload in the same vocabulary
			}
			ids[wd] = id
		}
	}
	for _, v := range expr.Vocabularies {
		fmt.Fprintf(&b, "- [%s](#%s):", v.Name, v.Name)
		for _, wd := range v.Words {
			fmt.Fprintf(&b, " [:%s](#%s)", wd.Name, ids[wd])
		}
		b.WriteString("\n")
	}
	for _, v := range expr.Vocabularies {
		fmt.Fprintf(&b, "\n## %s\n", v.Name)
		for _, wd := range v.Words {
			writeWord(&b, ids[wd], wd)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func anchor(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, name)
}

func writeWord(b *strings.Builder, id string, w *stack.Word) {
	fmt.Fprintf(b, "\n<a id=\"%s\"></a>\n### :%s\n\n", id, w.Name)
	fmt.Fprintf(b, "`%s`", w.Signature())
	if w.Deprecated {
		b.WriteString(" (deprecated)")
	}
	if w.Body != nil {
		fmt.Fprintf(b, " — macro for `%s`", strings.Join(w.Body, ","))
	}
	fmt.Fprintf(b, "\n\n%s\n", w.Summary)
	if len(w.Examples) == 0 {
		return
	}
	b.WriteString("\n| Program | Result |\n|---|---|\n")
	for _, ex := range w.Examples {
		prog, _ := strings.CutPrefix(ex, "ERROR:")
		if prog != "" {
			prog += ","
		}
		prog += ":" + w.Name
		c, err := Exec(prog, ParseOptions{})
		res := ""
		if err != nil {
			res = "error: " + err.Error()
		} else {
			var parts []string
			for _, it := range c.Result() {
				parts = append(parts, "`"+mdEscape(stack.Format(it))+"`")
			}
			res = strings.Join(parts, " ")
			if res == "" {
				res = "(empty)"
			}
		}
		fmt.Fprintf(b, "| `%s` | %s |\n", mdEscape(prog), mdEscape(res))
	}
}

// mdEscape keeps table cells intact.
func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
