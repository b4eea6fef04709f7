package stack

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Token is one comma-separated item of a program with the byte offset of
// its first non-space character.
type Token struct {
	Text string
	Pos  int
}

// MaxProgram bounds the program length in bytes.
const MaxProgram = 1 << 20

// Tokenize splits a program into trimmed, non-empty tokens, removing
// (nestable) comments. It fails on an unclosed or unopened comment.
func Tokenize(program string) ([]Token, error) {
	if len(program) > MaxProgram {
		return nil, &Error{Word: "", Msg: "program longer than " + strconv.Itoa(MaxProgram) + " bytes", Err: ErrLimit}
	}
	var (
		toks  []Token
		buf   []byte
		start = -1 // offset of the first non-space byte of the token
		depth int  // comment nesting
		open  int  // offset of the outermost open comment
	)
	flush := func() {
		text := strings.TrimSpace(string(buf))
		if text != "" {
			toks = append(toks, Token{Text: text, Pos: start})
		}
		buf, start = buf[:0], -1
	}
	// One pass over the bytes. Comments nest, as in Atlas, so that a
	// commented-out stretch of a program may itself hold comments; the
	// offset of the outermost opening is kept for the error that says a
	// comment was never closed. Token offsets are byte offsets into the
	// original text, which is what lets an error point at the word.
	for i := 0; i < len(program); i++ {
		c := program[i]
		switch {
		case c == '/' && i+1 < len(program) && program[i+1] == '*':
			if depth == 0 {
				open = i
			}
			depth++
			i++
		case c == '*' && i+1 < len(program) && program[i+1] == '/':
			if depth == 0 {
				return nil, &Error{Word: "*/", Pos: i, Token: len(toks), Msg: "unmatched end of comment '*/'"}
			}
			depth--
			i++
		case depth > 0:
			// inside a comment
		case c == ',':
			flush()
		default:
			if start < 0 && !isSpace(c) {
				start = i
			}
			buf = append(buf, c)
		}
	}
	if depth > 0 {
		return nil, &Error{Word: "/*", Pos: open, Token: len(toks), Msg: "unclosed comment"}
	}
	flush()
	return toks, nil
}

// isSpace reports ASCII white space, skipped when recording where a token
// starts so that an error points at its first visible character.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// Unescape decodes \uXXXX sequences; anything else is kept as is.
func Unescape(s string) string {
	if !strings.Contains(s, `\u`) {
		return s
	}
	var b strings.Builder
	// Only the BMP form \uXXXX exists in the language; a malformed escape
	// is kept as written rather than refused, as Atlas keeps it.
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+6 <= len(s) && s[i+1] == 'u' {
			if r, err := strconv.ParseUint(s[i+2:i+6], 16, 32); err == nil {
				b.WriteRune(rune(r))
				i += 5
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Escape is the inverse of Unescape for tokens: it escapes what would
// split or change a token (commas, a lone parenthesis, a leading colon,
// surrounding spaces, comment markers, control characters) so that
// tokenizing and unescaping Escape(s) gives s back.
func Escape(s string) string {
	lead := len(s) - len(strings.TrimLeftFunc(s, unicode.IsSpace))
	trail := len(strings.TrimRightFunc(s, unicode.IsSpace))
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteByte(s[i]) // invalid UTF-8 passes through untouched
			i++
			continue
		}
		esc := r == ',' || r < 0x20 || i < lead || i >= trail ||
			(i == 0 && (r == ':' || ((r == '(' || r == ')') && len(s) == 1))) ||
			(r == '*' && ((i > 0 && s[i-1] == '/') || strings.HasPrefix(s[i+1:], "/"))) ||
			(r == '\\' && strings.HasPrefix(s[i+1:], "u"))
		if esc {
			h := strconv.FormatUint(uint64(r), 16)
			b.WriteString(`\u`)
			b.WriteString(strings.Repeat("0", 4-len(h)))
			b.WriteString(h)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
