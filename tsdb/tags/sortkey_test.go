package tags

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// compareSets is the order AppendSortKey keys follow: tag by tag, key then
// value, a set before the longer sets it starts.
func compareSets(a, b Set) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].Key, b[i].Key); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

func sign(x int) int { return min(max(x, -1), 1) }

// TestAppendSortKey: the keys of random sets (short keys and values from a
// small alphabet, so that prefixes are common) sort as the sets do.
func TestAppendSortKey(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		b := make([]byte, rng.IntN(4))
		for i := range b {
			b[i] = "ab\x01\xff"[rng.IntN(4)]
		}
		return string(b)
	}
	set := func() Set {
		var kv []string
		for range rng.IntN(4) {
			kv = append(kv, "k"+word(), word())
		}
		return New(kv...)
	}
	for range 20_000 {
		a, b := set(), set()
		ka, err := AppendSortKey(nil, a.AppendTo(nil))
		if err != nil {
			t.Fatal(err)
		}
		kb, err := AppendSortKey([]byte("prefix"), b.AppendTo(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sign(bytes.Compare(ka, kb[len("prefix"):])), sign(compareSets(a, b)); got != want {
			t.Fatalf("AppendSortKey order of %v and %v = %d, want %d", a, b, got, want)
		}
	}
	if _, err := AppendSortKey(nil, []byte{5, 'a'}); err == nil {
		t.Error("AppendSortKey of a truncated encoding: no error")
	}
}

// FuzzAppendSortKey: any input is answered without a panic, and the key of
// a valid encoding is its tags, each followed by a NUL byte.
func FuzzAppendSortKey(f *testing.F) {
	f.Add(New("name", "cpu", "app", "api").AppendTo(nil))
	f.Add([]byte{})
	f.Add([]byte{0x80, 0x80, 0x80})
	f.Add([]byte{3, 'a', 'b'})
	f.Fuzz(func(t *testing.T, enc []byte) {
		key, err := AppendSortKey(nil, enc)
		s, derr := Decode(enc)
		if derr != nil {
			return // AppendSortKey checks less than Decode
		}
		if err != nil {
			t.Fatalf("AppendSortKey(%q): %v; Decode accepts it", enc, err)
		}
		var want []byte
		for _, tg := range s {
			want = append(append(append(append(want, tg.Key...), 0), tg.Value...), 0)
		}
		if !bytes.Equal(key, want) {
			t.Fatalf("AppendSortKey(%q) = %q, want %q", enc, key, want)
		}
	})
}
