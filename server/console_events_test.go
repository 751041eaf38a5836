package server_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// consoleAdmin starts a server (private webhook targets refused) with a
// workspace acme and a browser signed in as its admin.
func consoleAdmin(t *testing.T) (*servertest.Env, storage.User, *consoleBrowser) {
	env := servertest.New(t, nil)
	env.CreateWorkspace(t, "acme", nil)
	admin := addMember(t, env, "acme", "ada@acme.example", storage.SourceJIT, storage.Roles{Dev: "Admin", Test: "Admin", Prod: "Admin"})
	b := newConsoleBrowser(t, env)
	b.signInAs(admin.AccountID, "acme", time.Hour)
	return env, admin, b
}

var eventRow = regexp.MustCompile(`<tr data-event="([^"]+)">`)

// shownEvents are the ids of the event rows of a page or fragment.
func shownEvents(body string) []string {
	var ids []string
	for _, m := range eventRow.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// appendEvents appends n events of typ by actor to ws, in batches.
func appendEvents(t *testing.T, env *servertest.Env, ws, typ, actor string, n int) []storage.Event {
	t.Helper()
	var out []storage.Event
	for n > 0 {
		batch := make([]storage.Event, min(n, 500))
		for i := range batch {
			batch[i] = storage.Event{Type: typ, Actor: actor, Time: time.Now().UTC()}
		}
		got, err := env.Store.AppendEvents(t.Context(), ws, batch...)
		if err != nil {
			t.Fatal(err)
		}
		out, n = append(out, got...), n-len(batch)
	}
	return out
}

func ids(es []storage.Event) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// TestConsoleEventsFilters: the events page shows only the events of the
// actor asked for; from a time it shows the events from that time's
// millisecond on (read from there); a time it cannot read is refused
// next to its field with the value kept; a filter that matches nothing
// in the events one request may read stops and offers to search further,
// which finds the match; and the live tail's fragment gives the rows
// after its cursor and the cursor of the next poll.
func TestConsoleEventsFilters(t *testing.T) {
	env, admin, b := consoleAdmin(t)

	var scim, person []storage.Event
	for range 5 {
		scim = append(scim, appendEvents(t, env, "acme", "scim.user.created", "scim", 2)...)
		person = append(person, appendEvents(t, env, "acme", "admin.member.roles_changed", "user:"+admin.ID, 1)...)
	}

	// Actor.
	st, body := b.do(http.MethodGet, "/console/w/acme/events?actor="+url.QueryEscape("user:"+admin.ID), nil)
	if st != http.StatusOK || !slices.Equal(shownEvents(body), ids(person)) {
		t.Fatalf("events by user:%s: %d, rows %v, want %v", admin.ID, st, shownEvents(body), ids(person))
	}
	_, body = b.do(http.MethodGet, "/console/w/acme/events?type=scim.&actor=scim", nil)
	if !slices.Equal(shownEvents(body), ids(scim)) {
		t.Fatalf("scim events by scim: rows %v, want %v", shownEvents(body), ids(scim))
	}
	if _, body = b.do(http.MethodGet, "/console/w/acme/events?type=scim.&actor="+url.QueryEscape("user:"+admin.ID), nil); len(shownEvents(body)) != 0 || !strings.Contains(body, "No event.") {
		t.Fatalf("scim events by the admin: rows %v", shownEvents(body))
	}

	// From: the millisecond of the 7th event on.
	all, err := env.Store.ListEvents(t.Context(), "acme", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := strconv.ParseInt(all[6].ID[:strings.IndexByte(all[6].ID, '-')], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range all {
		if m, _ := strconv.ParseInt(e.ID[:strings.IndexByte(e.ID, '-')], 10, 64); m >= ms {
			want = append(want, e.ID)
		}
	}
	from := time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
	if _, body = b.do(http.MethodGet, "/console/w/acme/events?from="+url.QueryEscape(from), nil); !slices.Equal(shownEvents(body), want) {
		t.Fatalf("events from %s: rows %v, want %v", from, shownEvents(body), want)
	}
	future := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04")
	if _, body = b.do(http.MethodGet, "/console/w/acme/events?from="+future, nil); len(shownEvents(body)) != 0 {
		t.Fatalf("events from an hour ahead: rows %v", shownEvents(body))
	}
	st, body = b.do(http.MethodGet, "/console/w/acme/events?from=last+tuesday&actor=scim", nil)
	if st != http.StatusBadRequest || !strings.Contains(body, `id="event-from-error"`) || !strings.Contains(body, `value="last tuesday"`) ||
		!strings.Contains(body, `value="scim"`) {
		t.Fatalf("an unreadable time: %d\n%s", st, body)
	}

	// The cap on one request's reading: a match after more events than
	// that is found by searching further.
	appendEvents(t, env, "acme", "scim.user.updated", "scim", 5100)
	late := appendEvents(t, env, "acme", "admin.webhook.created", "admin:ops", 1)
	st, body = b.do(http.MethodGet, "/console/w/acme/events?actor=admin:ops", nil)
	further := regexp.MustCompile(`id="scan-capped">[^<]*<a href="([^"]+)"`).FindStringSubmatch(body)
	if st != http.StatusOK || len(shownEvents(body)) != 0 || further == nil {
		t.Fatalf("events by admin:ops behind 5100 others: %d, rows %v, no offer to search further", st, shownEvents(body))
	}
	link := strings.ReplaceAll(further[1], "&amp;", "&")
	if _, body = b.do(http.MethodGet, "/console/w/acme/events"+link, nil); !slices.Equal(shownEvents(body), ids(late)) || strings.Contains(body, `id="scan-capped"`) {
		t.Fatalf("searching further (%s): rows %v, want %v", link, shownEvents(body), ids(late))
	}

	// The live tail's fragment: nothing after the newest, then the new
	// event that matches, and the cursor moves past what it read.
	tail := func(after string) (string, http.Header) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, env.URL+"/console/w/acme/events/tail?actor=scim&after="+url.QueryEscape(after), nil)
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("tail after %s: %d, %v", after, resp.StatusCode, err)
		}
		return string(data), resp.Header
	}
	body, h := tail(late[0].ID)
	if len(shownEvents(body)) != 0 || h.Get("X-Events-Next") != late[0].ID || h.Get("X-Events-More") != "" {
		t.Fatalf("tail at the newest: rows %v, next %q, more %q", shownEvents(body), h.Get("X-Events-Next"), h.Get("X-Events-More"))
	}
	other := appendEvents(t, env, "acme", "admin.workspace.updated", "admin:ops", 1)
	news := appendEvents(t, env, "acme", "scim.user.deleted", "scim", 1)
	body, h = tail(late[0].ID)
	if !slices.Equal(shownEvents(body), ids(news)) || h.Get("X-Events-Next") != news[0].ID || strings.Contains(body, other[0].ID) {
		t.Fatalf("tail after a new event: rows %v, next %q; want %v", shownEvents(body), h.Get("X-Events-Next"), ids(news))
	}
	if !strings.Contains(body, "scim.user.deleted") || strings.Contains(body, "<html") {
		t.Fatalf("tail fragment is not the rows alone:\n%s", body)
	}
}
