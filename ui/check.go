package ui

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/stack"
)

// MaxCheckBytes is the longest expression the editor's check accepts (as
// the graph API's default --max-query-length).
const MaxCheckBytes = 16 << 10

// Check is the answer of GET /api/v1/ui/check: whether an expression
// parses, and when not, the error with the word and its position.
type Check struct {
	OK       bool   `json:"ok"`
	Message  string `json:"message,omitempty"`
	Word     string `json:"word,omitempty"`
	Position int    `json:"position"`
	Token    int    `json:"token"`
}

// CheckExpr parses q as the graph API would and reports the first error.
func CheckExpr(q string) Check {
	if len(q) > MaxCheckBytes {
		return Check{Message: fmt.Sprintf("q: %d bytes long, limit is %d", len(q), MaxCheckBytes), Position: -1, Token: -1}
	}
	_, err := query.Parse(q, query.ParseOptions{Unstable: true})
	return checkResult(err)
}

// CheckProgram runs q as the start of a longer program (the stack may hold
// anything), exactly as the completion API runs the text before the word
// being typed, and reports the first error: the editor asks for
// completions only where the completion API would answer.
func CheckProgram(q string) Check {
	if len(q) > MaxCheckBytes {
		return Check{Message: fmt.Sprintf("q: %d bytes long, limit is %d", len(q), MaxCheckBytes), Position: -1, Token: -1}
	}
	_, err := query.Interpreter().Execute(q, stack.Options{Vars: map[string]any{"tz": "UTC"}})
	return checkResult(err)
}

func checkResult(err error) Check {
	if err == nil {
		return Check{OK: true}
	}
	c := Check{Message: "q: " + err.Error(), Position: -1, Token: -1}
	var se *stack.Error
	if errors.As(err, &se) {
		c.Word, c.Position, c.Token = se.Word, se.Pos, se.Token
	}
	return c
}

// check serves GET /api/v1/ui/check?q=[&partial=1]: the editor's
// as-you-type lint (CheckExpr, or CheckProgram with partial=1, which the
// editor asks before completing). A bad expression is the answer, not a
// failed request (200 with ok false), so typing never fills the browser's
// console with failed requests; the graph API still answers 400 for it.
func (u *UI) check(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if v.Get("partial") == "1" {
		writeJSON(w, http.StatusOK, CheckProgram(v.Get("q")))
		return
	}
	writeJSON(w, http.StatusOK, CheckExpr(v.Get("q")))
}
