package alerting

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sextant-dev/sextant/tsdb"
)

// SilenceMatcher is a matcher in Alertmanager API v2's shape.
type SilenceMatcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual *bool  `json:"isEqual,omitempty"` // default true
}

// Silence mutes the notifications of alerts its matchers match between
// StartsAt and EndsAt.
type Silence struct {
	ID        string           `json:"id,omitempty"`
	Matchers  []SilenceMatcher `json:"matchers"`
	StartsAt  time.Time        `json:"startsAt"`
	EndsAt    time.Time        `json:"endsAt"`
	CreatedBy string           `json:"createdBy"`
	Comment   string           `json:"comment"`
	UpdatedAt time.Time        `json:"updatedAt,omitzero"`
	Status    *SilenceStatus   `json:"status,omitempty"`

	compiled Matchers
}

// SilenceStatus is a silence's state at a time: pending, active, expired.
type SilenceStatus struct {
	State string `json:"state"`
}

// Compile checks the silence and builds its matchers. Errors name the
// field.
func (s *Silence) Compile() error {
	if len(s.Matchers) == 0 {
		return &FieldError{Field: "matchers", Msg: "a silence needs at least one matcher"}
	}
	ms := make(Matchers, len(s.Matchers))
	for i, sm := range s.Matchers {
		t := MatchEqual
		eq := sm.IsEqual == nil || *sm.IsEqual
		switch {
		case sm.IsRegex && eq:
			t = MatchRegexp
		case sm.IsRegex:
			t = MatchNotRegexp
		case !eq:
			t = MatchNotEqual
		}
		m, err := NewMatcher(sm.Name, t, sm.Value)
		if err != nil {
			return &FieldError{Field: fmt.Sprintf("matchers[%d]", i), Msg: err.Error()}
		}
		ms[i] = m
	}
	if s.StartsAt.IsZero() {
		return &FieldError{Field: "startsAt", Msg: "missing"}
	}
	if s.EndsAt.IsZero() || !s.EndsAt.After(s.StartsAt) {
		return &FieldError{Field: "endsAt", Msg: "must be after startsAt"}
	}
	if s.CreatedBy == "" {
		return &FieldError{Field: "createdBy", Msg: "missing"}
	}
	s.compiled = ms
	return nil
}

// Matches reports whether the silence's matchers match labels (at any time).
func (s *Silence) Matches(labels map[string]string) bool { return s.compiled.Matches(labels) }

// ActiveAt reports whether the silence mutes at t.
func (s *Silence) ActiveAt(t time.Time) bool { return !t.Before(s.StartsAt) && t.Before(s.EndsAt) }

func (s *Silence) state(now time.Time) string {
	switch {
	case now.Before(s.StartsAt):
		return "pending"
	case now.Before(s.EndsAt):
		return "active"
	}
	return "expired"
}

// FieldError is bad user input, naming the field.
type FieldError struct {
	Field string
	Msg   string
}

// Error renders "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

const keySilences = "alerting/silences/"

// Silences keeps silences in memory and in a KV store. Safe for concurrent
// use.
type Silences struct {
	kv  tsdb.KV
	now func() time.Time
	// Max bounds the silences kept (expired ones included until they age
	// out 5 days after their end, as in Alertmanager).
	max int

	mu struct {
		sync.Mutex
		m map[string]*Silence
	}
}

// OpenSilences loads the silences saved in kv.
func OpenSilences(ctx context.Context, kv tsdb.KV, now func() time.Time) (*Silences, error) {
	if now == nil {
		now = time.Now
	}
	s := &Silences{kv: kv, now: now, max: 10_000}
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh reads the silences from the KV store again, for a store that
// other nodes write too (cluster mode): what they saved, expired or
// deleted is then known here.
func (s *Silences) Refresh(ctx context.Context) error {
	m := map[string]*Silence{}
	err := s.kv.Scan(ctx, keySilences, func(_ string, v []byte) error {
		var sil Silence
		if err := json.Unmarshal(v, &sil); err != nil {
			return nil
		}
		if sil.Compile() == nil {
			m[sil.ID] = &sil
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load silences: %w", err)
	}
	s.mu.Lock()
	s.mu.m = m
	s.mu.Unlock()
	return nil
}

// known reports whether id is a silence, reading the store again when it
// is not known here yet (another node may have just saved it).
func (s *Silences) known(ctx context.Context, id string) bool {
	for try := range 2 {
		s.mu.Lock()
		_, ok := s.mu.m[id]
		s.mu.Unlock()
		if ok || try == 1 || s.Refresh(ctx) != nil {
			return ok
		}
	}
	return false
}

// Put saves a silence: a new one when ID is empty (the ID is returned), or
// replaces the silence of that ID.
func (s *Silences) Put(ctx context.Context, sil *Silence) (string, error) {
	if err := sil.Compile(); err != nil {
		return "", err
	}
	now := s.now()
	if sil.ID == "" {
		var b [16]byte
		rand.Read(b[:])
		h := hex.EncodeToString(b[:])
		sil.ID = h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	} else if !s.known(ctx, sil.ID) {
		return "", fmt.Errorf("silence %s: %w", sil.ID, ErrNotFound)
	}
	sil.UpdatedAt = now.UTC()
	sil.Status = nil
	s.mu.Lock()
	if len(s.mu.m) >= s.max {
		s.mu.Unlock()
		return "", &FieldError{Field: "silence", Msg: fmt.Sprintf("too many silences (limit %d)", s.max)}
	}
	s.mu.Unlock()
	b, err := json.Marshal(sil)
	if err != nil {
		return "", err
	}
	if err := s.kv.Put(ctx, keySilences+sil.ID, b); err != nil {
		return "", fmt.Errorf("save silence: %w", err)
	}
	s.mu.Lock()
	s.mu.m[sil.ID] = sil
	s.mu.Unlock()
	return sil.ID, nil
}

// Expire ends a silence now (Alertmanager's DELETE).
func (s *Silences) Expire(ctx context.Context, id string) error {
	if !s.known(ctx, id) {
		return fmt.Errorf("silence %s: %w", id, ErrNotFound)
	}
	s.mu.Lock()
	old, ok := s.mu.m[id]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("silence %s: %w", id, ErrNotFound)
	}
	c := *old
	now := s.now().UTC()
	if c.EndsAt.After(now) {
		c.EndsAt = now
	}
	if c.StartsAt.After(now) {
		c.StartsAt = now.Add(-time.Millisecond)
	}
	b, _ := json.Marshal(&c)
	if err := s.kv.Put(ctx, keySilences+id, b); err != nil {
		return fmt.Errorf("save silence: %w", err)
	}
	s.mu.Lock()
	s.mu.m[id] = &c
	s.mu.Unlock()
	return nil
}

// List returns every silence with its status, newest end first.
func (s *Silences) List() []*Silence {
	now := s.now()
	s.mu.Lock()
	out := make([]*Silence, 0, len(s.mu.m))
	for _, id := range slices.Sorted(maps.Keys(s.mu.m)) {
		c := *s.mu.m[id]
		c.Status = &SilenceStatus{State: c.state(now)}
		out = append(out, &c)
	}
	s.mu.Unlock()
	slices.SortStableFunc(out, func(a, b *Silence) int { return b.EndsAt.Compare(a.EndsAt) })
	return out
}

// Muted returns the ids of the silences muting labels at t.
func (s *Silences) Muted(labels map[string]string, t time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, sil := range s.mu.m {
		if sil.ActiveAt(t) && sil.Matches(labels) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// ParseSilenceMatchers reads matchers written as ParseMatcher reads them
// ("severity=page", `service=~"api|web"`) into the API's shape.
func ParseSilenceMatchers(ss []string) ([]SilenceMatcher, error) {
	ms, err := ParseMatchers(ss)
	if err != nil {
		return nil, err
	}
	out := make([]SilenceMatcher, len(ms))
	for i, m := range ms {
		eq := m.Type == MatchEqual || m.Type == MatchRegexp
		out[i] = SilenceMatcher{Name: m.Name, Value: m.Value, IsRegex: m.Type == MatchRegexp || m.Type == MatchNotRegexp, IsEqual: &eq}
	}
	return out, nil
}

// String renders the silence's matchers.
func (s *Silence) String() string {
	parts := make([]string, len(s.compiled))
	for i, m := range s.compiled {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
