package stack

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTokenize(t *testing.T) {
	t.Parallel()
	f := func(in string, want ...string) {
		t.Helper()
		toks, err := Tokenize(in)
		if err != nil {
			t.Fatalf("Tokenize(%q): %v", in, err)
		}
		var got []string
		for _, tk := range toks {
			got = append(got, tk.Text)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Tokenize(%q) (-want +got):\n%s", in, diff)
		}
	}
	f("")
	f("a", "a")
	f("a,,b", "a", "b")
	f(" a , b\n,\tc ", "a", "b", "c")
	f("a,/* x, y */b", "a", "b")
	f("a/* nested /* deeper */ still */b", "ab")
	f("(,1,(,),)", "(", "1", "(", ")", ")")
	f(`a\u002cb`, `a\u002cb`)
}

func TestTokenPositions(t *testing.T) {
	t.Parallel()
	toks, err := Tokenize("name, sps ,:eq")
	if err != nil {
		t.Fatal(err)
	}
	want := []Token{{"name", 0}, {"sps", 6}, {":eq", 11}}
	if diff := cmp.Diff(want, toks); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a,b", ":eq", "(", ")", " lead", "trail ", "a/*b", "a*/b", `back\u0041`, "tab\tin", "ünï,code", "plain"} {
		toks, err := Tokenize(Escape(s))
		if err != nil || len(toks) != 1 || Unescape(toks[0].Text) != s {
			t.Errorf("Escape(%q) = %q: tokens %v, err %v", s, Escape(s), toks, err)
		}
	}
	if Escape("plain.name-1") != "plain.name-1" {
		t.Errorf("plain text was escaped")
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"a,b", ":x", " (", "/*", `\u0041`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" || strings.ContainsRune(s, 0xfffd) {
			return
		}
		toks, err := Tokenize(Escape(s))
		if err != nil || len(toks) != 1 || Unescape(toks[0].Text) != s {
			t.Fatalf("Escape(%q) = %q does not round trip: %v %v", s, Escape(s), toks, err)
		}
	})
}

func exec(t *testing.T, prog string) ([]any, error) {
	t.Helper()
	c, err := New(Std).Execute(prog, Options{})
	if err != nil {
		return nil, err
	}
	return c.Result(), nil
}

func TestStd(t *testing.T) {
	t.Parallel()
	cases := []struct {
		prog string
		want []any
	}{
		{"a,:dup", []any{"a", "a"}},
		{`a\u002cb`, []any{"a,b"}},
		{"duplicate,(,:dup,),:set,a,duplicate,:fcall", []any{"a", "a"}},
		{"foo%s,(,bar,),:format", []any{"foobar"}},
		{"%2$s-%1$s-%%,(,a,b,),:format", []any{"b-a-%"}},
		{"[%-3s],(,a,),:format", []any{"[a  ]"}},
		{"a,b,c,:freeze,d,e,f,:clear", []any{"a", "b", "c"}},
		{"a,b,:list,(,:dup,),:each", []any{"a", "a", "b", "b"}},
		{"(,a%s,b%s,),(,(,.netflix.com,),:format,),:map", []any{List{"a.netflix.com", "b.netflix.com"}}},
		{"(,1,(,),)", []any{List{"1", "(", ")"}}},
		{"a,b,:nip", []any{"b"}},
		{"a,b,c,2,:nlist", []any{"a", List{"b", "c"}}},
		{"a,b,:over", []any{"a", "b", "a"}},
		{"a,b,1,:roll", []any{"b", "a"}},
		{"a,b,c,2,:roll", []any{"b", "c", "a"}},
		{"k,v,:set,k,:get", []any{"v"}},
		{"a,b,:swap", []any{"b", "a"}},
		{"a,b,:tuck", []any{"b", "a", "b"}},
		{"a,b,:2over", []any{"a", "b", "a", "b"}},
		{"a,b,c,:rot", []any{"b", "c", "a"}},
		{"a,b,c,:-rot", []any{"c", "a", "b"}},
		{"a,b,:depth", []any{"a", "b", "2"}},
		{"a,b,c,2,:ndrop", []any{"a"}},
		{"a,9,:ndrop", nil},
		{"a,b,1,:pick", []any{"a", "b", "a"}},
		{"v,k,:sset,k,:get", []any{"v"}},
		{"(,a,:dup,),:call", []any{"a", "a"}},
		{"k,v,:set,:freeze,k,other,:set,k,:get", []any{"other"}},
		{"a,/* b, */c", []any{"a", "c"}},
	}
	for _, tc := range cases {
		got, err := exec(t, tc.prog)
		if err != nil {
			t.Errorf("%s: %v", tc.prog, err)
			continue
		}
		if len(got) == 0 {
			got = nil
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.prog, diff)
		}
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		prog, msg, word string
		pos             int
	}{
		{"a,:foo", "unknown word ':foo'", ":foo", 2},
		{"a,/*b", "unclosed comment", "/*", 2},
		{"a,b*/", "unmatched end of comment", "*/", 3},
		{"a,)", "unmatched closing parenthesis", ")", 2},
		{"(,a", "unmatched opening parenthesis", "(", 0},
		{"a,1,:pick", "cannot pick item 1", ":pick", 4},
		{"a, :swap", "no matches for word ':swap' with stack [a]", ":swap", 3},
		{"missing,:get", `variable "missing" is not set`, ":get", 8},
		{"%d,(,a,),:format", "unsupported format conversion", ":format", 9},
		{"f,(,f,:fcall,),:set,f,:fcall", "looping detected", ":fcall", 22},
	}
	for _, tc := range cases {
		_, err := exec(t, tc.prog)
		e, ok := AsError(err)
		if !ok {
			t.Errorf("%s: error %v is not a *stack.Error", tc.prog, err)
			continue
		}
		if !strings.Contains(e.Msg, tc.msg) || e.Pos != tc.pos || e.Word != tc.word {
			t.Errorf("%s: got %q word %q at %d, want %q word %q at %d", tc.prog, e.Msg, e.Word, e.Pos, tc.msg, tc.word, tc.pos)
		}
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	_, err := exec(t, strings.Repeat("a,", MaxStack+1))
	if !errors.Is(err, ErrLimit) {
		t.Errorf("stack overflow: %v", err)
	}
	_, err = exec(t, "(,"+strings.Repeat("a,", MaxStack+1)+")")
	if !errors.Is(err, ErrLimit) {
		t.Errorf("long list: %v", err)
	}
	// Doubling the stack with :list/:each grows fast; the limit stops it.
	_, err = exec(t, "a,(,:dup,:dup,:list,(,:dup,),:each,),:dup,:set,a,:fcall")
	if err == nil {
		t.Errorf("runaway program succeeded")
	}
}

func TestSignature(t *testing.T) {
	t.Parallel()
	in := New(Std)
	if got := in.Lookup("pick")[0].Signature(); got != "n:Int -- aN..a0 aN" {
		t.Errorf("pick signature %q", got)
	}
	if got := in.Lookup("drop")[0].Signature(); got != "a:Any --" {
		t.Errorf("drop signature %q", got)
	}
}

func FuzzExecute(f *testing.F) {
	for _, s := range []string{"a,:dup", "(,1,(,),)", "f,(,f,:fcall,),:set,f,:fcall", "a,b,:list,(,:dup,),:each", "%s,(,a,),:format", "/* x */"} {
		f.Add(s)
	}
	in := New(Std)
	f.Fuzz(func(t *testing.T, prog string) {
		c, err := in.Execute(prog, Options{})
		if err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("error %v is not a *stack.Error", err)
			}
			return
		}
		if len(c.Stack) > MaxStack {
			t.Fatalf("stack of %d items", len(c.Stack))
		}
	})
}

func TestStepLimit(t *testing.T) {
	t.Parallel()
	// 64 items, each expanded by a function that itself loops: without a
	// step budget this runs for a very long time.
	inner := "(," + strings.Repeat("a,", 64) + "),(,:drop,),:each"
	prog := "(," + strings.Repeat("a,", 64) + "),(,:drop," + inner + ",),:each"
	prog = "g,(," + prog + ",),:set," + strings.Repeat("g,:fcall,", 300)
	_, err := exec(t, prog)
	if !errors.Is(err, ErrLimit) {
		t.Errorf("got %v, want a step limit error", err)
	}
}
