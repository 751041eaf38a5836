package console

import (
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// TestEventFilterMatch: the type filter is a prefix, the actor filter an
// exact match of the actor as events record it, and both must hold.
func TestEventFilterMatch(t *testing.T) {
	e := storage.Event{Type: "admin.webhook.created", Actor: "user:42"}
	for _, tc := range []struct {
		f    eventFilter
		want bool
	}{
		{eventFilter{}, true},
		{eventFilter{Type: "admin."}, true},
		{eventFilter{Type: "admin.webhook.created"}, true},
		{eventFilter{Type: "scim."}, false},
		{eventFilter{Actor: "user:42"}, true},
		{eventFilter{Actor: "user:4"}, false},
		{eventFilter{Actor: "USER:42"}, false},
		{eventFilter{Type: "admin.", Actor: "user:42"}, true},
		{eventFilter{Type: "admin.", Actor: "scim"}, false},
		{eventFilter{Type: "login.", Actor: "user:42"}, false},
	} {
		if got := tc.f.match(e); got != tc.want {
			t.Errorf("%+v matches %+v: %v, want %v", tc.f, e, got, tc.want)
		}
	}
}

// TestParseFormTime: a time field takes the browser's datetime-local
// value (UTC), a space instead of the T, seconds, an RFC 3339 time with
// its zone, or a date; anything else is refused.
func TestParseFormTime(t *testing.T) {
	want := time.Date(2026, 1, 31, 14, 5, 0, 0, time.UTC)
	for in, w := range map[string]time.Time{
		"2026-01-31T14:05":          want,
		"2026-01-31 14:05":          want,
		"2026-01-31T14:05:00":       want,
		"2026-01-31 14:05:00":       want,
		"2026-01-31T15:05:00+01:00": want,
		"2026-01-31":                time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC),
	} {
		got, ok := parseFormTime(in)
		if !ok || !got.Equal(w) {
			t.Errorf("parseFormTime(%q) = %v, %v; want %v", in, got, ok, w)
		}
	}
	for _, in := range []string{"", "yesterday", "31/01/2026 14:05", "2026-13-01T00:00", "14:05"} {
		if got, ok := parseFormTime(in); ok {
			t.Errorf("parseFormTime(%q) = %v, want refused", in, got)
		}
	}
}
