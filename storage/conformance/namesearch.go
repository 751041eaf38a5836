package conformance

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

// nameSearchCases check FindUsers by UserByName against a model: the
// members ListUsers returns whose folded full name starts with the folded
// value, in name order.
var nameSearchCases = []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}{
	{"UserNameSearch", testUserNameSearch},
}

// wantNameSearch checks that a name search for q in ws finds what the
// model picks from ListUsers, in name order (then id); and returns the
// ids.
func wantNameSearch(t *testing.T, s storage.Store, ws, q, what string) []string {
	t.Helper()
	all, _, err := s.ListUsers(ctxT(t), ws, 0, 1000)
	must(t, err, "list users")
	type named struct{ key, id string }
	var model []named
	p := storage.FoldKey(q)
	for _, u := range all {
		if k := storage.FoldKey(u.FullName()); k != "" && p != "" && strings.HasPrefix(k, p) {
			model = append(model, named{k, u.ID})
		}
	}
	sort.Slice(model, func(i, j int) bool {
		if model[i].key != model[j].key {
			return model[i].key < model[j].key
		}
		return model[i].id < model[j].id
	})
	want := []string{}
	for _, m := range model {
		want = append(want, m.id)
	}
	more := len(want) > storage.NameSearchLimit
	if more {
		want = want[:storage.NameSearchLimit]
	}
	found, err := s.FindUsers(ctxT(t), ws, storage.UserByName, q, storage.FindOptions{})
	must(t, err, what+": name search "+q)
	if ids := userIDs(found.Users); !slices.Equal(ids, want) || found.More != more {
		t.Fatalf("%s: name search %q = %v (more %v), want %v (more %v)", what, q, ids, found.More, want, more)
	}
	return want
}

// testUserNameSearch: a name search finds members by the start of their
// full name (formatted, else given and family, else displayName),
// case-insensitively and in Unicode normal form, through creates (SCIM and
// JIT), renames and deletes, at most NameSearchLimit in name order;
// another workspace sees nothing.
func testUserNameSearch(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	names := []map[string]any{
		{"name": map[string]any{"formatted": "Jane Doe", "givenName": "Jane", "familyName": "Doe"}},
		{"name": map[string]any{"formatted": "jane Smith"}},
		{"name": map[string]any{"givenName": "Janet", "familyName": "Ng"}},
		{"displayName": "Jan Bot"},
		{"name": map[string]any{"formatted": "\u00c9lo\u00efse Dupont"}}, // composed É and ï
		{"name": map[string]any{"formatted": "Zo\u0065\u0308 Roe"}},      // decomposed ë
		{"title": "no name at all"},
	}
	var ids []string
	for i, attrs := range names {
		a := newAccount(t, s, fmt.Sprintf("named%02d@example.com", i))
		u, err := s.CreateUser(ctx, wsA, storage.User{AccountID: a.ID, UserName: a.Email, Emails: []string{a.Email},
			Active: true, Verified: true, Source: storage.SourceSCIM, Attributes: attrs})
		must(t, err, "create")
		ids = append(ids, u.ID)
	}
	r, err := s.CreateJITUser(ctx, wsA, jitSignIn("jitnamed@example.com", wsA, "k-jitnamed"))
	must(t, err, "jit create")
	jit := r.User.ID

	for _, q := range []string{"ja", "JANE", "jane ", "Jane D", "janet ng", "x", "\u00e9lo\u00efse", "\u00c9LO",
		"zo\u00eb", "Zo\u0065\u0308 r", "jit jitnamed", "no name"} {
		wantNameSearch(t, s, wsA, q, "after creates")
	}
	if got := wantNameSearch(t, s, wsA, "jane", "jane"); !slices.Equal(got, []string{ids[0], ids[1], ids[2]}) {
		t.Fatalf("jane = %v, want Jane Doe, jane Smith, Janet Ng", got)
	}
	if got := wantNameSearch(t, s, wsA, "jit", "jit"); !slices.Equal(got, []string{jit}) {
		t.Fatalf("jit = %v, want the JIT member", got)
	}
	if got, err := findUsers(ctx, s, wsA, storage.UserByName, ""); err != nil || len(got) != 0 {
		t.Fatalf("an empty name search = %v, %v; want nothing", userIDs(got), err)
	}

	// A rename moves the entry; a change that keeps the name keeps it; a
	// delete removes it.
	_, err = s.UpdateUser(ctx, wsA, ids[0], 0, func(u *storage.User) error {
		u.Attributes = map[string]any{"name": map[string]any{"formatted": "Mary Doe"}}
		return nil
	})
	must(t, err, "rename")
	_, err = s.UpdateUser(ctx, wsA, ids[1], 0, func(u *storage.User) error {
		u.Roles.Dev, u.Active = storage.RoleAdmin, false
		return nil
	})
	must(t, err, "update without a rename")
	_, err = s.UpdateUser(ctx, wsA, ids[6], 0, func(u *storage.User) error {
		u.Attributes = map[string]any{"displayName": "Jan Late"}
		return nil
	})
	must(t, err, "name a member that had none")
	must(t, s.DeleteUser(ctx, wsA, ids[3], 0), "delete")
	for _, q := range []string{"ja", "jane", "mary", "jan ", "Jan B", "jan l"} {
		wantNameSearch(t, s, wsA, q, "after renames and deletes")
	}
	if got := wantNameSearch(t, s, wsA, "jan", "jan"); !slices.Equal(got, []string{ids[6], ids[1], ids[2]}) {
		t.Fatalf("jan = %v, want Jan Late, jane Smith, Janet Ng", got)
	}

	// At most NameSearchLimit, the first in name order.
	for i := 0; i < storage.NameSearchLimit+5; i++ {
		a := newAccount(t, s, fmt.Sprintf("bulk%03d@example.com", i))
		_, err := s.CreateUser(ctx, wsA, storage.User{AccountID: a.ID, UserName: a.Email, Active: true,
			Source: storage.SourceSCIM, Attributes: map[string]any{"displayName": fmt.Sprintf("Bulk %03d", 200-i)}})
		must(t, err, "create bulk")
	}
	got := wantNameSearch(t, s, wsA, "bulk", "bulk")
	if len(got) != storage.NameSearchLimit {
		t.Fatalf("bulk = %d members, want %d", len(got), storage.NameSearchLimit)
	}
	// Exactly NameSearchLimit matches (Bulk 100 to Bulk 199): all, and
	// not "more".
	if got := wantNameSearch(t, s, wsA, "bulk 1", "bulk 1"); len(got) != storage.NameSearchLimit {
		t.Fatalf("bulk 1 = %d members, want %d", len(got), storage.NameSearchLimit)
	}
	first, err := s.GetUser(ctx, wsA, got[0])
	must(t, err, "get first")
	if n := first.FullName(); n != "Bulk 096" {
		t.Fatalf("first bulk member = %q, want Bulk 096", n)
	}

	// Another workspace sees nothing.
	for _, q := range []string{"ja", "bulk", "jit"} {
		if got, err := findUsers(ctx, s, wsB, storage.UserByName, q); err != nil || len(got) != 0 {
			t.Fatalf("workspace %s: name search %q = %v, %v; want nothing", wsB, q, userIDs(got), err)
		}
	}
	otherSeesNothing(t, s, wsB, ids, nil, nil)
}
