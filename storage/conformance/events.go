package conformance

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// eventCases are the cases of the event stream: sign-in events (login.*)
// and all others are kept apart by the store but listed as one stream.
var eventCases = []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}{
	{"EventsMergedInOrder", testEventsMerged},
	{"EventsCursorPages", testEventsCursorPages},
	{"EventsFromTime", testEventsFrom},
}

// appendMixed appends n rounds of a SCIM event, a refused and a
// successful sign-in to wsA and returns their ids in append order.
func appendMixed(t *testing.T, s storage.Store, n int) []storage.Event {
	t.Helper()
	var out []storage.Event
	for i := range n {
		for _, typ := range []string{"scim.user.created", "login.refused", "login.succeeded"} {
			es, err := s.AppendEvents(ctxT(t), wsA, storage.Event{Type: typ, Actor: "test",
				Detail: map[string]string{"n": fmt.Sprint(i)}})
			must(t, err, "append "+typ)
			e := es[0]
			out = append(out, e)
		}
	}
	return out
}

// testEventsMerged: ListEvents returns every event once, with the id
// AppendEvent gave it, each kind in the order it was appended, and always
// in the same order. (How sign-in events and others appended at the same
// moment interleave is the backend's; redisstore's own test pins it.)
func testEventsMerged(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	appended := appendMixed(t, s, 20)
	all, err := s.ListEvents(ctx, wsA, "", 1000)
	must(t, err, "list")
	if len(all) != len(appended) {
		t.Fatalf("listed %d events, want %d", len(all), len(appended))
	}
	byID := map[string]storage.Event{}
	for _, e := range all {
		if _, dup := byID[e.ID]; dup {
			t.Fatalf("event id %s listed twice", e.ID)
		}
		byID[e.ID] = e
	}
	for _, a := range appended {
		e, ok := byID[a.ID]
		if !ok {
			t.Fatalf("appended event %s (%s) not listed", a.ID, a.Type)
		}
		if e.Type != a.Type || e.Detail["n"] != a.Detail["n"] || !e.Time.Equal(a.Time) {
			t.Fatalf("event %s listed as %+v, appended as %+v", a.ID, e, a)
		}
	}
	for _, typ := range []string{"scim.user.created", "login.refused", "login.succeeded"} {
		n := 0
		for _, e := range all {
			if e.Type == typ {
				if e.Detail["n"] != fmt.Sprint(n) {
					t.Fatalf("%s events out of order: %d-th has n=%s", typ, n, e.Detail["n"])
				}
				n++
			}
		}
	}
	again, err := s.ListEvents(ctx, wsA, "", 1000)
	must(t, err, "list again")
	if !slices.EqualFunc(all, again, func(a, b storage.Event) bool { return a.ID == b.ID }) {
		t.Fatalf("two lists of the same events differ in order")
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
	for _, e := range all[:3] {
		if evs, err := s.ListEvents(ctx, wsB, e.ID, 10); err != nil || len(evs) != 0 {
			t.Fatalf("other workspace with A's cursor %s: %d events, %v", e.ID, len(evs), err)
		}
	}
}

// testEventsCursorPages: reading page by page with the last id as the
// cursor gives exactly the full list, for any page size, whichever kind
// of event ends a page.
func testEventsCursorPages(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	appendMixed(t, s, 15)
	all, err := s.ListEvents(ctx, wsA, "", 1000)
	must(t, err, "list")
	for _, size := range []int{1, 2, 4, 7} {
		var got []storage.Event
		after := ""
		for range len(all) + 1 {
			page, err := s.ListEvents(ctx, wsA, after, size)
			must(t, err, fmt.Sprintf("page of %d after %q", size, after))
			if len(page) > size {
				t.Fatalf("page of %d has %d events", size, len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].ID
		}
		if !slices.EqualFunc(all, got, func(a, b storage.Event) bool { return a.ID == b.ID }) {
			t.Fatalf("pages of %d give %d events, the full list %d, or another order", size, len(got), len(all))
		}
	}
	if end, err := s.ListEvents(ctx, wsA, all[len(all)-1].ID, 10); err != nil || len(end) != 0 {
		t.Fatalf("after the last event: %d events, %v", len(end), err)
	}
	for _, bad := range []string{"x", "1-2-3", "12", "-1-0", "1-0-m"} {
		if _, err := s.ListEvents(ctx, wsA, bad, 10); err == nil {
			t.Errorf("ListEvents after %q: no error", bad)
		}
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}

// testEventsFrom: storage.EventsFrom(t) is a cursor that lists exactly
// the events appended from t's millisecond on, of both kinds, in the
// order of the full list; a time before them all gives them all, one
// after them none, and another workspace sees nothing from it.
func testEventsFrom(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	appendMixed(t, s, 10)
	all, err := s.ListEvents(ctx, wsA, "", 1000)
	must(t, err, "list")
	appendedAt := func(e storage.Event) int64 {
		ms, err := strconv.ParseInt(e.ID[:strings.IndexByte(e.ID, '-')], 10, 64)
		if err != nil {
			t.Fatalf("event id %q does not start with its millisecond", e.ID)
		}
		return ms
	}
	for _, i := range []int{0, 1, len(all) / 2, len(all) - 1} {
		at := appendedAt(all[i])
		var want []storage.Event
		for _, e := range all {
			if appendedAt(e) >= at {
				want = append(want, e)
			}
		}
		got, err := s.ListEvents(ctx, wsA, storage.EventsFrom(time.UnixMilli(at)), 1000)
		must(t, err, "list from a time")
		if !slices.EqualFunc(want, got, func(a, b storage.Event) bool { return a.ID == b.ID }) {
			t.Fatalf("from %d: %d events, want %d (those of the full list from that millisecond)", at, len(got), len(want))
		}
		if !slices.ContainsFunc(got, func(e storage.Event) bool { return e.ID == all[i].ID }) {
			t.Fatalf("from the millisecond of %s: not listed", all[i].ID)
		}
	}
	before, err := s.ListEvents(ctx, wsA, storage.EventsFrom(time.UnixMilli(appendedAt(all[0])-1000)), 1000)
	must(t, err, "list from before")
	if len(before) != len(all) {
		t.Fatalf("from before every event: %d events, want %d", len(before), len(all))
	}
	after, err := s.ListEvents(ctx, wsA, storage.EventsFrom(time.UnixMilli(appendedAt(all[len(all)-1])+1000)), 1000)
	must(t, err, "list from after")
	if len(after) != 0 {
		t.Fatalf("from after every event: %d events", len(after))
	}
	if storage.EventsFrom(time.Unix(0, 0)) != "" {
		t.Fatal("EventsFrom(epoch) is not the start")
	}
	if evs, err := s.ListEvents(ctx, wsB, storage.EventsFrom(time.UnixMilli(appendedAt(all[0]))), 100); err != nil || len(evs) != 0 {
		t.Fatalf("other workspace from A's time: %d events, %v", len(evs), err)
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}
