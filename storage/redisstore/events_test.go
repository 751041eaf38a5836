package redisstore_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

// TestListEventsEqualEntryIDs: the two event streams of a workspace (sign-in
// events and the rest) number their entries independently, so both can
// hold the same entry id. The merged list puts the main stream's entry
// first, and a cursor on either of them continues with the other, so no
// page skips or repeats an event.
func TestListEventsEqualEntryIDs(t *testing.T) {
	s := redistest.NewRedisStore(t)
	ctx := t.Context()
	if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "ties", Name: "Ties", Settings: storage.DefaultSettings()}); err != nil {
		t.Fatal(err)
	}
	add := func(stream, id, typ string) {
		t.Helper()
		d, _ := json.Marshal(map[string]any{"v": 1, "t": 1, "ty": typ})
		if err := s.Client().XAdd(ctx, &redis.XAddArgs{Stream: "sj:{ws:ties}:" + stream, ID: id,
			Values: []any{"d", string(d)}}).Err(); err != nil {
			t.Fatalf("xadd %s %s: %v", stream, id, err)
		}
	}
	add("events:login", "999-5", "login.refused")
	add("events", "1000-0", "scim.user.created")
	add("events:login", "1000-0", "login.refused")
	add("events", "1000-1", "admin.workspace.updated")
	add("events:login", "1000-1", "login.succeeded")
	add("events", "1001-0", "scim.user.deleted")
	want := []string{"999-5-l", "1000-0", "1000-0-l", "1000-1", "1000-1-l", "1001-0"}

	all, err := s.ListEvents(ctx, "ties", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(all); got != strings.Join(want, " ") {
		t.Fatalf("merged list = %s, want %s", got, strings.Join(want, " "))
	}
	for size := 1; size <= 3; size++ {
		var got []storage.Event
		after := ""
		for range len(want) + 1 {
			page, err := s.ListEvents(ctx, "ties", after, size)
			if err != nil {
				t.Fatalf("page of %d after %q: %v", size, after, err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].ID
		}
		if ids(got) != strings.Join(want, " ") {
			t.Fatalf("pages of %d = %s, want %s", size, ids(got), strings.Join(want, " "))
		}
	}
	for after, next := range map[string]string{"1000-0": "1000-0-l", "1000-0-l": "1000-1", "999-5-l": "1000-0", "1000-1-l": "1001-0"} {
		page, err := s.ListEvents(ctx, "ties", after, 1)
		if err != nil || len(page) != 1 || page[0].ID != next {
			t.Fatalf("after %s: %v %v, want %s", after, ids(page), err, next)
		}
	}
	if err := s.DeleteWorkspace(ctx, "ties"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Client().Exists(ctx, "sj:{ws:ties}:events", "sj:{ws:ties}:events:login").Result(); err != nil || n != 0 {
		t.Fatalf("after DeleteWorkspace %d event streams remain (%v)", n, err)
	}
}

func ids(evs []storage.Event) string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return strings.Join(out, " ")
}
