package tags

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	got := Set{{"b", "1"}, {"a", "x"}, {"b", "2"}, {"c", "3"}}.Normalize()
	want := Set{{"a", "x"}, {"b", "2"}, {"c", "3"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Normalize() mismatch (-want +got):\n%s", diff)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []Set{
		nil,
		New("name", "cpu"),
		New("name", "requests", "app", "api01", "node", "i-0123abcd", "status", "200"),
		New("name", string(make([]byte, 300)), "k", ""),
	} {
		enc := s.AppendTo(nil)
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(%v): %v", s, err)
		}
		if !got.Equal(s) {
			t.Errorf("Decode(AppendTo(%v)) = %v", s, got)
		}
		if !s.EqualEncoded(enc) {
			t.Errorf("EqualEncoded(%v) = false on own encoding", s)
		}
		other := append(s.Clone(), Tag{"zz", "1"})
		if other.EqualEncoded(enc) || (len(s) > 0 && s[:len(s)-1].EqualEncoded(enc)) {
			t.Errorf("EqualEncoded(%v) matched a different set", s)
		}
	}
}

func TestDecodeRejectsUnsorted(t *testing.T) {
	t.Parallel()
	enc := Set{{"b", "1"}, {"a", "2"}}.AppendTo(nil)
	if _, err := Decode(enc); err == nil {
		t.Errorf("Decode(unsorted) succeeded")
	}
	if _, err := Decode([]byte{5, 'a'}); err == nil {
		t.Errorf("Decode(truncated) succeeded")
	}
}

func TestValueEncoded(t *testing.T) {
	t.Parallel()
	s := New("name", "cpu", "app", "www", "zone", "a")
	enc := s.AppendTo(nil)
	for _, tc := range []struct {
		key, want string
		ok        bool
	}{{"name", "cpu", true}, {"app", "www", true}, {"zone", "a", true}, {"nf.app", "", false}} {
		got, ok := ValueEncoded(enc, tc.key)
		if string(got) != tc.want || ok != tc.ok {
			t.Errorf("ValueEncoded(%q) = %q, %v; want %q, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
}

func TestClone(t *testing.T) {
	t.Parallel()
	b := []byte("abc")
	s := Set{{"k", string(b)}}
	c := s.Clone()
	if !c.Equal(s) {
		t.Fatalf("Clone() = %v, want %v", c, s)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(New("name", "cpu", "app", "www").AppendTo(nil))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		if enc := s.AppendTo(nil); !s.EqualEncoded(enc) || string(enc) != string(b) {
			t.Fatalf("re-encoding %v differs from input", s)
		}
	})
}
