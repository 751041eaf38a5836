package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// These tests put Redis into the states that crashes, lost replies and the
// bugs of earlier versions left behind (by writing and deleting keys
// directly) and check that Store.Check reports each one, repairs what it
// may, leaves nothing fixable behind, and that the store then works again
// for the people concerned.

// reportOnly are the kinds Check never repairs.
var reportOnly = map[string]bool{
	redisstore.KindUserUniqueConflict: true, redisstore.KindUserRecordInvalid: true,
	redisstore.KindUserAccountMissing: true, redisstore.KindGroupRecordInvalid: true,
	redisstore.KindGroupUniqueConflict: true, redisstore.KindEmailIndexWrongAccount: true,
	redisstore.KindAccountEmailConflict: true, redisstore.KindAccountRecordInvalid: true,
}

// checkFixture is a small store built through the public API: workspaces
// one and two; alice (SCIM) in one; bob (a JIT sign-in in one) who joined
// two; the group Admins in one with both as members. Its accounts were
// created an hour ago, beyond the checker's grace period.
type checkFixture struct {
	s                     *redisstore.Store
	c                     redis.UniversalClient
	prefix                string
	alice, bob            storage.Account
	aliceU, bobOne, bobTw storage.User
	admins                storage.Group
}

func (f *checkFixture) ws(ws, name string) string { return f.prefix + ":{ws:" + ws + "}:" + name }
func (f *checkFixture) acct(id string) string     { return f.prefix + ":{acct:" + id + "}:a" }
func (f *checkFixture) emailIndex() string        { return f.prefix + ":{accounts}:email" }
func (f *checkFixture) registry() string          { return f.prefix + ":{registry}:workspaces" }
func (f *checkFixture) domainIndex() string       { return f.prefix + ":{registry}:domains" }

// must fails the test on a Redis error of a corrupting write.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var hourAgo = time.Now().Add(-time.Hour)

func newCheckFixture(t *testing.T, s *redisstore.Store, prefix string) *checkFixture {
	t.Helper()
	ctx := t.Context()
	f := &checkFixture{s: s, c: s.Client(), prefix: prefix}
	for _, ws := range []string{"one", "two"} {
		if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: ws, Name: ws}); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	f.alice, _, err = s.GetOrCreateAccount(ctx, storage.Account{Email: "Alice@Example.com", FullName: "Alice A",
		Source: storage.SourceSCIM, OriginWorkspace: "one", CreatedAt: hourAgo})
	must(t, err)
	f.aliceU, err = s.CreateUser(ctx, "one", storage.User{AccountID: f.alice.ID, UserName: "alice@example.com",
		ExternalID: "ext-alice", Emails: []string{"alice@example.com", "alice.work@example.com"}, Active: true,
		Verified: true, Source: storage.SourceSCIM, Attributes: map[string]any{"name": map[string]any{"formatted": "Alice A"}}})
	must(t, err)
	j, err := s.CreateJITUser(ctx, "one", storage.JITUser{
		Account: storage.Account{Email: "bob@example.com", FullName: "Bob B", Source: storage.SourceJIT,
			OriginWorkspace: "one", CreatedAt: hourAgo},
		User: storage.User{UserName: "bob@example.com", Emails: []string{"bob@example.com"}, Active: true, Verified: true,
			Source: storage.SourceJIT, Created: hourAgo, Attributes: map[string]any{"name": map[string]any{"formatted": "Bob B"}}},
		Session: storage.Session{Key: "sess-bob-" + prefix, ActiveWorkspace: "one", CreatedAt: time.Now(),
			ExpiresAt: time.Now().Add(time.Hour)},
		Events: []storage.Event{{Type: "jit.user.created"}, {Type: "login.succeeded"}},
	})
	must(t, err)
	f.bob, f.bobOne = j.Account, j.User
	f.bobTw, err = s.CreateUser(ctx, "two", storage.User{AccountID: f.bob.ID, UserName: "bob@example.com",
		Emails: []string{"bob@example.com"}, Active: true, Source: storage.SourceSCIM})
	must(t, err)
	f.admins, err = s.CreateGroup(ctx, "one", storage.Group{DisplayName: "Admins", ExternalID: "g-admins",
		Members: []string{f.aliceU.ID, f.bobOne.ID}})
	must(t, err)
	return f
}

// plant copies the record of user id in workspace from into workspace
// to's record hash alone: a record that lost its index entries.
func (f *checkFixture) plant(t *testing.T, from, to, id string) {
	t.Helper()
	rec, err := f.c.HGet(t.Context(), f.ws(from, "users"), id).Result()
	must(t, err)
	must(t, f.c.HSet(t.Context(), f.ws(to, "users"), id, rec).Err())
}

// oldAccount writes an account record directly (as a crash after the
// first step of a create leaves it), created an hour ago.
func (f *checkFixture) oldAccount(t *testing.T, id, email string) {
	t.Helper()
	must(t, f.c.HSet(t.Context(), f.acct(id), "v", "1", "e", email, "n", "", "s", "scim", "o", "one",
		"c", strconv.FormatInt(hourAgo.UnixMicro(), 10)).Err())
}

func kindsOf(r redisstore.CheckReport) []string {
	var ks []string
	for _, p := range r.Problems {
		if !slices.Contains(ks, p.Kind) {
			ks = append(ks, p.Kind)
		}
	}
	sort.Strings(ks)
	return ks
}

// checkCase is one corruption.
type checkCase struct {
	name    string
	corrupt func(t *testing.T, f *checkFixture)
	// kinds are the kinds Check reports, each at least once.
	kinds []string
	// workspace limits the check (CheckOptions.Workspace).
	workspace string
	// before shows the damage through the store's API (optional).
	before func(t *testing.T, f *checkFixture)
	// after shows that the store works again for the people concerned.
	after func(t *testing.T, f *checkFixture)
}

func findUsers(t *testing.T, f *checkFixture, ws string, by storage.UserIndex, v string) []string {
	t.Helper()
	found, err := f.s.FindUsers(t.Context(), ws, by, v, storage.FindOptions{})
	must(t, err)
	var ids []string
	for _, u := range found.Users {
		ids = append(ids, u.ID)
	}
	return ids
}

func wantUsers(t *testing.T, f *checkFixture, ws string, by storage.UserIndex, v string, want ...string) {
	t.Helper()
	if got := findUsers(t, f, ws, by, v); !slices.Equal(got, want) {
		t.Errorf("FindUsers(%s, %s) = %v, want %v", by, v, got, want)
	}
}

func wantGroups(t *testing.T, f *checkFixture, by storage.GroupIndex, v string, want ...string) {
	t.Helper()
	gs, err := f.s.FindGroups(t.Context(), "one", by, v)
	must(t, err)
	var got []string
	for _, g := range gs {
		got = append(got, g.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("FindGroups(%s, %s) = %v, want %v", by, v, got, want)
	}
}

func wantNoKey(t *testing.T, f *checkFixture, key string) {
	t.Helper()
	if n, err := f.c.Exists(t.Context(), key).Result(); err != nil || n != 0 {
		t.Errorf("%s still exists (%v)", key, err)
	}
}

func wantCreateUser(t *testing.T, f *checkFixture, ws, userName string) {
	t.Helper()
	if _, err := f.s.CreateUser(t.Context(), ws, storage.User{UserName: userName}); err != nil {
		t.Errorf("create user %s: %v", userName, err)
	}
}

func wantConflict(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("err = %v, want a conflict", err)
	}
}

func wantUserGroups(t *testing.T, f *checkFixture, uid string, want ...string) {
	t.Helper()
	m, err := f.s.UserGroups(t.Context(), "one", []string{uid})
	must(t, err)
	var got []string
	for _, r := range m[uid] {
		got = append(got, r.ID)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("groups of %s = %v, want %v", uid, got, want)
	}
}

const (
	nfdJose = "Jose\u0301@example.com" // e + combining acute, as written before Unicode folding
	nfcJose = "jos\u00e9@example.com"  // the folded key
	nfdWork = "Jose\u0301.Work@Example.com"
	nfcWork = "jos\u00e9.work@example.com"
)

var checkCases = []checkCase{
	// The corruption: a re-sent publish made createAccount delete
	// the record the email index already pointed to, while memberships
	// referenced it. Every sign-in of that email failed from then on.
	{name: "email index names a deleted account with memberships", kinds: []string{redisstore.KindEmailIndexDangling},
		corrupt: func(t *testing.T, f *checkFixture) { must(t, f.c.Del(t.Context(), f.acct(f.bob.ID)).Err()) },
		before: func(t *testing.T, f *checkFixture) {
			if _, err := f.s.LoginLookup(t.Context(), "one", "bob@example.com"); err == nil {
				t.Error("sign-in lookup of a dangling email succeeded before the repair")
			}
			if _, _, err := f.s.GetOrCreateAccount(t.Context(), storage.Account{Email: "bob@example.com"}); err == nil {
				t.Error("GetOrCreateAccount of a dangling email succeeded before the repair")
			}
		},
		after: func(t *testing.T, f *checkFixture) { checkBobRebuilt(t, f) }},
	{name: "the same, checking only the workspace bob joined", workspace: "two",
		kinds:   []string{redisstore.KindEmailIndexDangling},
		corrupt: func(t *testing.T, f *checkFixture) { must(t, f.c.Del(t.Context(), f.acct(f.bob.ID)).Err()) },
		after:   func(t *testing.T, f *checkFixture) { checkBobRebuilt(t, f) }},
	{name: "email index names a deleted account without memberships", kinds: []string{redisstore.KindEmailIndexDangling},
		corrupt: func(t *testing.T, f *checkFixture) {
			a, _, err := f.s.GetOrCreateAccount(t.Context(), storage.Account{Email: "eve@example.com"})
			must(t, err)
			must(t, f.c.Del(t.Context(), f.acct(a.ID)).Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			if _, created, err := f.s.GetOrCreateAccount(t.Context(), storage.Account{Email: "eve@example.com"}); err != nil || !created {
				t.Errorf("GetOrCreateAccount(eve) = created %v, %v; want a new account", created, err)
			}
		}},
	{name: "deleted account indexed under an email key written before Unicode folding",
		kinds: []string{redisstore.KindEmailIndexDangling, redisstore.KindIndexKeyNotFolded},
		corrupt: func(t *testing.T, f *checkFixture) {
			j, err := f.s.CreateJITUser(t.Context(), "one", storage.JITUser{
				Account: storage.Account{Email: nfdJose, Source: storage.SourceJIT, OriginWorkspace: "one", CreatedAt: hourAgo},
				User:    storage.User{UserName: nfdJose, Emails: []string{nfdJose}, Active: true, Verified: true},
				Session: storage.Session{Key: "sess-jose-" + f.prefix, ExpiresAt: time.Now().Add(time.Hour)},
			})
			must(t, err)
			must(t, f.c.HDel(t.Context(), f.emailIndex(), nfcJose).Err())
			must(t, f.c.HSet(t.Context(), f.emailIndex(), "jose\u0301@example.com", j.Account.ID).Err())
			must(t, f.c.Del(t.Context(), f.acct(j.Account.ID)).Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			if l, err := f.s.LoginLookup(t.Context(), "one", nfcJose); err != nil || !l.Member || l.Account.Email != nfdJose {
				t.Errorf("sign-in lookup = %+v, %v", l, err)
			}
		}},
	{name: "email index names another person's account", kinds: []string{redisstore.KindEmailIndexWrongAccount},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HSet(t.Context(), f.emailIndex(), "mallory@example.com", f.alice.ID).Err())
		}},
	{name: "account record of a crashed create", kinds: []string{redisstore.KindAccountUnpublished},
		corrupt: func(t *testing.T, f *checkFixture) { f.oldAccount(t, "leftover", "carol@example.com") },
		after:   func(t *testing.T, f *checkFixture) { wantNoKey(t, f, f.acct("leftover")) }},
	{name: "account record that lost the race for its email", kinds: []string{redisstore.KindAccountUnpublished},
		corrupt: func(t *testing.T, f *checkFixture) { f.oldAccount(t, "loser", "alice@example.com") },
		after: func(t *testing.T, f *checkFixture) {
			wantNoKey(t, f, f.acct("loser"))
			if a, err := f.s.GetAccountByEmail(t.Context(), "alice@example.com"); err != nil || a.ID != f.alice.ID {
				t.Errorf("alice's account = %+v, %v", a, err)
			}
		}},
	{name: "account with memberships missing from the email index", kinds: []string{redisstore.KindAccountUnindexed},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HDel(t.Context(), f.emailIndex(), "alice@example.com").Err())
		},
		before: func(t *testing.T, f *checkFixture) {
			if _, err := f.s.GetAccountByEmail(t.Context(), "alice@example.com"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetAccountByEmail(alice) = %v before the repair, want not found", err)
			}
		},
		after: func(t *testing.T, f *checkFixture) {
			if a, created, err := f.s.GetOrCreateAccount(t.Context(), storage.Account{Email: "alice@example.com"}); err != nil ||
				created || a.ID != f.alice.ID {
				t.Errorf("GetOrCreateAccount(alice) = %s created %v, %v; want alice's account", a.ID, created, err)
			}
		}},
	{name: "account with memberships whose email is indexed to another account",
		kinds: []string{redisstore.KindAccountEmailConflict},
		corrupt: func(t *testing.T, f *checkFixture) {
			f.oldAccount(t, "twin", "alice@example.com")
			_, err := f.s.CreateUser(t.Context(), "two", storage.User{AccountID: "twin", UserName: "alice.twin@example.com"})
			must(t, err)
		}},
	{name: "account record of an unknown version", kinds: []string{redisstore.KindAccountRecordInvalid},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HSet(t.Context(), f.acct("weird"), "v", "9", "e", "weird@example.com").Err())
		}},
	{name: "membership without account", kinds: []string{redisstore.KindUserAccountMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			a, _, err := f.s.GetOrCreateAccount(t.Context(), storage.Account{Email: "zed@example.com"})
			must(t, err)
			_, err = f.s.CreateUser(t.Context(), "one", storage.User{AccountID: a.ID, UserName: "zed"})
			must(t, err)
			must(t, f.c.Del(t.Context(), f.acct(a.ID)).Err())
			must(t, f.c.HDel(t.Context(), f.emailIndex(), "zed@example.com").Err())
		}},
	{name: "membership missing its account's back-pointer", kinds: []string{redisstore.KindAccountBackPointerMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HDel(t.Context(), f.acct(f.alice.ID), "w:one").Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			ms, err := f.s.AccountMemberships(t.Context(), f.alice.ID)
			if err != nil || len(ms) != 1 || ms[0] != (storage.MembershipRef{WorkspaceID: "one", UserID: f.aliceU.ID}) {
				t.Errorf("alice's memberships = %+v, %v", ms, err)
			}
		}},
	{name: "back-pointer without membership", kinds: []string{redisstore.KindAccountBackPointerStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HSet(t.Context(), f.acct(f.alice.ID), "w:two", "1").Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			if ok, err := f.c.HExists(t.Context(), f.acct(f.alice.ID), "w:two").Result(); err != nil || ok {
				t.Errorf("stale back-pointer still there (%v)", err)
			}
		}},
	{name: "registry misses a workspace", kinds: []string{redisstore.KindWorkspaceUnregistered},
		corrupt: func(t *testing.T, f *checkFixture) { must(t, f.c.ZRem(t.Context(), f.registry(), "two").Err()) },
		after: func(t *testing.T, f *checkFixture) {
			ws, err := f.s.ListWorkspaces(t.Context())
			if err != nil || len(ws) != 2 {
				t.Errorf("workspaces = %+v, %v", ws, err)
			}
		}},
	{name: "email-domain index misses a workspace's domain", kinds: []string{redisstore.KindDomainIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			_, err := f.s.UpdateWorkspace(t.Context(), "two", func(w *storage.Workspace) error {
				w.Settings.Login.EmailDomains = []string{"two.example"}
				return nil
			})
			must(t, err)
			must(t, f.c.ZRem(t.Context(), f.domainIndex(), "two.example two").Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			ws, err := f.s.WorkspacesByEmailDomain(t.Context(), "two.example")
			if err != nil || len(ws) != 1 || ws[0].ID != "two" {
				t.Errorf("workspaces of two.example = %+v, %v", ws, err)
			}
		}},
	{name: "email-domain index entry no record lists", kinds: []string{redisstore.KindDomainIndexStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZAdd(t.Context(), f.domainIndex(), redis.Z{Member: "old.example one"}).Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			if err := f.c.ZScore(t.Context(), f.domainIndex(), "old.example one").Err(); !errors.Is(err, redis.Nil) {
				t.Errorf("stale domain entry still there (%v)", err)
			}
		}},
	{name: "registry lists a deleted workspace", kinds: []string{redisstore.KindWorkspaceRegistryDangling},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZAdd(t.Context(), f.registry(), redis.Z{Member: "gone"}).Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			if err := f.c.ZScore(t.Context(), f.registry(), "gone").Err(); !errors.Is(err, redis.Nil) {
				t.Errorf("registry entry still there (%v)", err)
			}
		}},

	// User indexes.
	{name: "userName entry of a deleted user", kinds: []string{redisstore.KindUserIndexDangling},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HSet(t.Context(), f.ws("one", "ix:un"), "ghost@example.com", "ghost-id").Err())
		},
		before: func(t *testing.T, f *checkFixture) {
			_, err := f.s.CreateUser(t.Context(), "one", storage.User{UserName: "ghost@example.com"})
			wantConflict(t, err)
		},
		after: func(t *testing.T, f *checkFixture) { wantCreateUser(t, f, "one", "Ghost@example.com") }},
	{name: "externalId entry of a deleted user", kinds: []string{redisstore.KindUserIndexDangling},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZAdd(t.Context(), f.ws("one", "ix:uxz"), redis.Z{Member: "ext-ghost\x00ghost-id"}).Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			wantNoMember(t, f, f.ws("one", "ix:uxz"), "ext-ghost\x00ghost-id")
		}},
	{name: "account entry of a deleted user",
		kinds: []string{redisstore.KindUserIndexDangling, redisstore.KindAccountBackPointerStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HDel(t.Context(), f.ws("two", "users"), f.bobTw.ID).Err())
			must(t, f.c.HDel(t.Context(), f.ws("two", "ix:un"), "bob@example.com").Err())
			must(t, f.c.ZRem(t.Context(), f.ws("two", "ix:uo"), f.bobTw.ID).Err())
		},
		before: func(t *testing.T, f *checkFixture) {
			_, err := f.s.CreateUser(t.Context(), "two", storage.User{AccountID: f.bob.ID, UserName: "bob@example.com"})
			wantConflict(t, err)
		},
		after: func(t *testing.T, f *checkFixture) {
			if _, err := f.s.CreateUser(t.Context(), "two", storage.User{AccountID: f.bob.ID, UserName: "bob@example.com"}); err != nil {
				t.Errorf("bob cannot join two again: %v", err)
			}
		}},
	{name: "email entry of a deleted user", kinds: []string{redisstore.KindUserIndexDangling},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZAdd(t.Context(), f.ws("one", "ix:ue"), redis.Z{Member: "ghost@example.com\x00ghost-id"}).Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			wantNoMember(t, f, f.ws("one", "ix:ue"), "ghost@example.com\x00ghost-id")
		}},
	{name: "order entry of a deleted user", kinds: []string{redisstore.KindUserIndexDangling},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZAdd(t.Context(), f.ws("one", "ix:uo"), redis.Z{Score: 1.5, Member: "ghost-id"}).Err())
		},
		after: func(t *testing.T, f *checkFixture) { wantTotal(t, f, 2) }},
	{name: "userName entry left by a rename", kinds: []string{redisstore.KindUserIndexStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HSet(t.Context(), f.ws("one", "ix:un"), "old-alice@example.com", f.aliceU.ID).Err())
		},
		before: func(t *testing.T, f *checkFixture) {
			wantUsers(t, f, "one", storage.UserByUserName, "old-alice@example.com", f.aliceU.ID)
		},
		after: func(t *testing.T, f *checkFixture) { wantCreateUser(t, f, "one", "old-alice@example.com") }},
	{name: "externalId entry left by a change", kinds: []string{redisstore.KindUserIndexStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZAdd(t.Context(), f.ws("one", "ix:uxz"), redis.Z{Member: "ext-old\x00" + f.aliceU.ID}).Err())
		},
		before: func(t *testing.T, f *checkFixture) {
			wantUsers(t, f, "one", storage.UserByExternalID, "ext-old", f.aliceU.ID)
		},
		after: func(t *testing.T, f *checkFixture) { wantUsers(t, f, "one", storage.UserByExternalID, "ext-old") }},
	{name: "account entry naming a user of another account", kinds: []string{redisstore.KindUserIndexStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HSet(t.Context(), f.ws("one", "ix:ua"), "acct-other", f.aliceU.ID).Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			if ok, _ := f.c.HExists(t.Context(), f.ws("one", "ix:ua"), "acct-other").Result(); ok {
				t.Error("stale account entry still there")
			}
		}},
	{name: "email entry left by a change", kinds: []string{redisstore.KindUserIndexStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZAdd(t.Context(), f.ws("one", "ix:ue"), redis.Z{Member: "old@example.com\x00" + f.aliceU.ID}).Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			wantNoMember(t, f, f.ws("one", "ix:ue"), "old@example.com\x00"+f.aliceU.ID)
		}},
	{name: "malformed email entry", kinds: []string{redisstore.KindUserIndexStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZAdd(t.Context(), f.ws("one", "ix:ue"), redis.Z{Member: "no-separator"}).Err())
		},
		after: func(t *testing.T, f *checkFixture) { wantNoMember(t, f, f.ws("one", "ix:ue"), "no-separator") }},
	{name: "user missing from the userName index", kinds: []string{redisstore.KindUserIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HDel(t.Context(), f.ws("one", "ix:un"), "alice@example.com").Err())
		},
		before: func(t *testing.T, f *checkFixture) {
			wantUsers(t, f, "one", storage.UserByUserName, "Alice@example.com")
		},
		after: func(t *testing.T, f *checkFixture) {
			wantUsers(t, f, "one", storage.UserByUserName, "Alice@example.com", f.aliceU.ID)
			_, err := f.s.CreateUser(t.Context(), "one", storage.User{UserName: "ALICE@example.com"})
			wantConflict(t, err)
		}},
	{name: "user missing from the externalId index", kinds: []string{redisstore.KindUserIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZRem(t.Context(), f.ws("one", "ix:uxz"), "ext-alice\x00"+f.aliceU.ID).Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			wantUsers(t, f, "one", storage.UserByExternalID, "ext-alice", f.aliceU.ID)
		}},
	{name: "user missing from the account index", kinds: []string{redisstore.KindUserIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HDel(t.Context(), f.ws("one", "ix:ua"), f.bob.ID).Err())
		},
		before: func(t *testing.T, f *checkFixture) {
			if l, err := f.s.LoginLookup(t.Context(), "one", "bob@example.com"); err != nil || l.Member {
				t.Errorf("lookup before the repair = member %v, %v; want not a member", l.Member, err)
			}
		},
		after: func(t *testing.T, f *checkFixture) {
			if l, err := f.s.LoginLookup(t.Context(), "one", "bob@example.com"); err != nil || !l.Member || l.User.ID != f.bobOne.ID {
				t.Errorf("bob's sign-in lookup = %+v, %v", l, err)
			}
		}},
	{name: "user missing from the email index", kinds: []string{redisstore.KindUserIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZRem(t.Context(), f.ws("one", "ix:ue"), "alice.work@example.com\x00"+f.aliceU.ID).Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			wantUsers(t, f, "one", storage.UserByEmail, "Alice.Work@example.com", f.aliceU.ID)
		}},
	{name: "user missing from the order index", kinds: []string{redisstore.KindUserIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZRem(t.Context(), f.ws("one", "ix:uo"), f.aliceU.ID).Err())
		},
		before: func(t *testing.T, f *checkFixture) { wantTotal(t, f, 1) },
		after:  func(t *testing.T, f *checkFixture) { wantTotal(t, f, 2) }},
	{name: "two users claim one userName", kinds: []string{redisstore.KindUserUniqueConflict, redisstore.KindUserIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			_, err := f.s.CreateUser(t.Context(), "one", storage.User{UserName: "carol@example.com"})
			must(t, err)
			twin, err := f.s.CreateUser(t.Context(), "two", storage.User{UserName: "CAROL@example.com"})
			must(t, err)
			f.plant(t, "two", "one", twin.ID)
		}},
	{name: "two memberships of one account in a workspace",
		kinds: []string{redisstore.KindUserUniqueConflict, redisstore.KindUserIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			twin, err := f.s.CreateUser(t.Context(), "two", storage.User{AccountID: f.alice.ID, UserName: "alice.b@example.com"})
			must(t, err)
			f.plant(t, "two", "one", twin.ID)
		}},
	{name: "unreadable user record", kinds: []string{redisstore.KindUserRecordInvalid},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HSet(t.Context(), f.ws("one", "users"), "broken", "not a record").Err())
		}},
	{name: "userName key written before Unicode folding", kinds: []string{redisstore.KindIndexKeyNotFolded},
		corrupt: func(t *testing.T, f *checkFixture) {
			u, err := f.s.CreateUser(t.Context(), "one", storage.User{UserName: nfdJose})
			must(t, err)
			must(t, f.c.HDel(t.Context(), f.ws("one", "ix:un"), nfcJose).Err())
			must(t, f.c.HSet(t.Context(), f.ws("one", "ix:un"), "jose\u0301@example.com", u.ID).Err())
		},
		before: func(t *testing.T, f *checkFixture) { wantUsers(t, f, "one", storage.UserByUserName, nfcJose) },
		after: func(t *testing.T, f *checkFixture) {
			if len(findUsers(t, f, "one", storage.UserByUserName, nfcJose)) != 1 {
				t.Error("the user is not found by its folded userName")
			}
			_, err := f.s.CreateUser(t.Context(), "one", storage.User{UserName: "JOS\u00c9@example.com"})
			wantConflict(t, err)
		}},
	{name: "email key written before Unicode folding", kinds: []string{redisstore.KindIndexKeyNotFolded},
		corrupt: func(t *testing.T, f *checkFixture) {
			u, err := f.s.CreateUser(t.Context(), "one", storage.User{UserName: "jose", Emails: []string{" " + nfdWork}})
			must(t, err)
			must(t, f.c.ZRem(t.Context(), f.ws("one", "ix:ue"), nfcWork+"\x00"+u.ID).Err())
			must(t, f.c.ZAdd(t.Context(), f.ws("one", "ix:ue"), redis.Z{Member: "jose\u0301.work@example.com\x00" + u.ID}).Err())
		},
		before: func(t *testing.T, f *checkFixture) { wantUsers(t, f, "one", storage.UserByEmail, nfcWork) },
		after: func(t *testing.T, f *checkFixture) {
			if len(findUsers(t, f, "one", storage.UserByEmail, nfcWork)) != 1 {
				t.Error("the user is not found by its folded email")
			}
		}},
	{name: "account email key written before Unicode folding", kinds: []string{redisstore.KindIndexKeyNotFolded},
		corrupt: func(t *testing.T, f *checkFixture) {
			a, _, err := f.s.GetOrCreateAccount(t.Context(), storage.Account{Email: nfdJose, CreatedAt: hourAgo})
			must(t, err)
			must(t, f.c.HDel(t.Context(), f.emailIndex(), nfcJose).Err())
			must(t, f.c.HSet(t.Context(), f.emailIndex(), "jose\u0301@example.com", a.ID).Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			a, created, err := f.s.GetOrCreateAccount(t.Context(), storage.Account{Email: nfcJose})
			if err != nil || created || a.Email != nfdJose {
				t.Errorf("GetOrCreateAccount(folded email) = %+v created %v, %v; want the existing account", a, created, err)
			}
		}},
	{name: "user counter behind", kinds: []string{redisstore.KindSequenceBehind},
		corrupt: func(t *testing.T, f *checkFixture) { must(t, f.c.Set(t.Context(), f.ws("one", "seq:u"), "0", 0).Err()) },
		after: func(t *testing.T, f *checkFixture) {
			u, err := f.s.CreateUser(t.Context(), "one", storage.User{UserName: "last@example.com"})
			must(t, err)
			us, _, err := f.s.ListUsers(t.Context(), "one", 0, 10)
			must(t, err)
			if len(us) != 3 || us[2].ID != u.ID {
				t.Errorf("a new user is not listed last: %d users", len(us))
			}
		}},
	{name: "unique externalId indexes of an earlier version",
		kinds: []string{redisstore.KindLegacyIndex, redisstore.KindUserIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HSet(t.Context(), f.ws("one", "ix:ux"), "ext-alice", f.aliceU.ID).Err())
			must(t, f.c.HSet(t.Context(), f.ws("one", "ix:gx"), "g-admins", f.admins.ID).Err())
			must(t, f.c.ZRem(t.Context(), f.ws("one", "ix:uxz"), "ext-alice\x00"+f.aliceU.ID).Err())
		},
		before: func(t *testing.T, f *checkFixture) { wantUsers(t, f, "one", storage.UserByExternalID, "ext-alice") },
		after: func(t *testing.T, f *checkFixture) {
			wantUsers(t, f, "one", storage.UserByExternalID, "ext-alice", f.aliceU.ID)
			wantNoKey(t, f, f.ws("one", "ix:ux"))
			wantNoKey(t, f, f.ws("one", "ix:gx"))
		}},

	// Groups.
	{name: "displayName entry of a deleted group", kinds: []string{redisstore.KindGroupIndexDangling},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HSet(t.Context(), f.ws("one", "ix:gn"), "ghosts", "g-ghost").Err())
		},
		before: func(t *testing.T, f *checkFixture) {
			_, err := f.s.CreateGroup(t.Context(), "one", storage.Group{DisplayName: "Ghosts"})
			wantConflict(t, err)
		},
		after: func(t *testing.T, f *checkFixture) {
			if _, err := f.s.CreateGroup(t.Context(), "one", storage.Group{DisplayName: "Ghosts"}); err != nil {
				t.Errorf("create group: %v", err)
			}
		}},
	{name: "group externalId entry of a deleted group", kinds: []string{redisstore.KindGroupIndexDangling},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZAdd(t.Context(), f.ws("one", "ix:gxz"), redis.Z{Member: "gx\x00g-ghost"}).Err())
		},
		after: func(t *testing.T, f *checkFixture) { wantNoMember(t, f, f.ws("one", "ix:gxz"), "gx\x00g-ghost") }},
	{name: "group order entry of a deleted group", kinds: []string{redisstore.KindGroupIndexDangling},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZAdd(t.Context(), f.ws("one", "ix:go"), redis.Z{Score: 0.5, Member: "g-ghost"}).Err())
		},
		before: func(t *testing.T, f *checkFixture) {
			if gs, n, err := f.s.ListGroups(t.Context(), "one", 0, 10); err != nil || n != 2 || len(gs) != 1 {
				t.Errorf("ListGroups = %d of %d, %v; want 1 of 2", len(gs), n, err)
			}
		},
		after: func(t *testing.T, f *checkFixture) { wantGroupTotal(t, f, 1) }},
	{name: "displayName entry left by a rename", kinds: []string{redisstore.KindGroupIndexStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HSet(t.Context(), f.ws("one", "ix:gn"), "old admins", f.admins.ID).Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			if _, err := f.s.CreateGroup(t.Context(), "one", storage.Group{DisplayName: "Old Admins"}); err != nil {
				t.Errorf("create group: %v", err)
			}
		}},
	{name: "group externalId entry left by a change", kinds: []string{redisstore.KindGroupIndexStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZAdd(t.Context(), f.ws("one", "ix:gxz"), redis.Z{Member: "g-old\x00" + f.admins.ID}).Err())
		},
		before: func(t *testing.T, f *checkFixture) { wantGroups(t, f, storage.GroupByExternal, "g-old", f.admins.ID) },
		after:  func(t *testing.T, f *checkFixture) { wantGroups(t, f, storage.GroupByExternal, "g-old") }},
	{name: "group missing from the displayName index", kinds: []string{redisstore.KindGroupIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HDel(t.Context(), f.ws("one", "ix:gn"), "admins").Err())
		},
		before: func(t *testing.T, f *checkFixture) { wantGroups(t, f, storage.GroupByName, "Admins") },
		after: func(t *testing.T, f *checkFixture) {
			wantGroups(t, f, storage.GroupByName, "Admins", f.admins.ID)
			_, err := f.s.CreateGroup(t.Context(), "one", storage.Group{DisplayName: "ADMINS"})
			wantConflict(t, err)
		}},
	{name: "group missing from the externalId index", kinds: []string{redisstore.KindGroupIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZRem(t.Context(), f.ws("one", "ix:gxz"), "g-admins\x00"+f.admins.ID).Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			wantGroups(t, f, storage.GroupByExternal, "g-admins", f.admins.ID)
		}},
	{name: "group missing from the order index", kinds: []string{redisstore.KindGroupIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZRem(t.Context(), f.ws("one", "ix:go"), f.admins.ID).Err())
		},
		before: func(t *testing.T, f *checkFixture) { wantGroupTotal(t, f, 0) },
		after:  func(t *testing.T, f *checkFixture) { wantGroupTotal(t, f, 1) }},
	{name: "two groups claim one displayName",
		kinds: []string{redisstore.KindGroupUniqueConflict, redisstore.KindGroupIndexStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			g, err := f.s.CreateGroup(t.Context(), "one", storage.Group{DisplayName: "Ops"})
			must(t, err)
			must(t, f.c.HSet(t.Context(), f.ws("one", "g:"+g.ID), "dn", "ADMINS", "dnl", "admins").Err())
		}},
	{name: "group hash of an unknown version", kinds: []string{redisstore.KindGroupRecordInvalid},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.HSet(t.Context(), f.ws("one", "g:broken"), "v", "9", "id", "broken").Err())
		}},
	{name: "group member that is not a user", kinds: []string{redisstore.KindGroupMemberDangling},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.SAdd(t.Context(), f.ws("one", "gm:"+f.admins.ID), "ghost-id").Err())
		},
		after: func(t *testing.T, f *checkFixture) {
			g, err := f.s.GetGroup(t.Context(), "one", f.admins.ID)
			if err != nil || len(g.Members) != 2 || slices.Contains(g.Members, "ghost-id") || g.Version <= f.admins.Version {
				t.Errorf("group after the repair = %+v, %v; want the two users and a new version", g, err)
			}
		}},
	{name: "member missing from the group membership index", kinds: []string{redisstore.KindGroupMemberIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZRem(t.Context(), f.ws("one", "ix:ug"), f.aliceU.ID+"\x00"+f.admins.ID).Err())
		},
		before: func(t *testing.T, f *checkFixture) { wantUserGroups(t, f, f.aliceU.ID) },
		after:  func(t *testing.T, f *checkFixture) { wantUserGroups(t, f, f.aliceU.ID, f.admins.ID) }},
	{name: "group membership entry without membership", kinds: []string{redisstore.KindGroupMemberIndexStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			g, err := f.s.CreateGroup(t.Context(), "one", storage.Group{DisplayName: "Ops"})
			must(t, err)
			must(t, f.c.ZAdd(t.Context(), f.ws("one", "ix:ug"), redis.Z{Member: f.aliceU.ID + "\x00" + g.ID}).Err())
		},
		after: func(t *testing.T, f *checkFixture) { wantUserGroups(t, f, f.aliceU.ID, f.admins.ID) }},
	{name: "member set of a deleted group", kinds: []string{redisstore.KindGroupMembersOrphan},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.SAdd(t.Context(), f.ws("one", "gm:gone"), f.aliceU.ID).Err())
		},
		after: func(t *testing.T, f *checkFixture) { wantNoKey(t, f, f.ws("one", "gm:gone")) }},
	// A store written by a version without member filters: no filter
	// index and no marker. Filters refuse rather than answer from
	// missing entries; the repair builds the entries and the marker.
	{name: "member filter indexes never built", kinds: []string{redisstore.KindFilterIndexUnbuilt, redisstore.KindUserIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			for _, ws := range []string{"one", "two"} {
				keys, err := f.c.Keys(t.Context(), f.ws(ws, "ix:uf*")).Result()
				must(t, err)
				must(t, f.c.Del(t.Context(), keys...).Err())
			}
		},
		before: func(t *testing.T, f *checkFixture) {
			if _, err := f.s.ListUsersFiltered(t.Context(), "one", storage.UserFilter{Source: storage.SourceJIT}, "", 10); !errors.Is(err, storage.ErrNotIndexed) {
				t.Errorf("a filter on unbuilt indexes = %v, want ErrNotIndexed", err)
			}
			if p, err := f.s.ListUsersFiltered(t.Context(), "one", storage.UserFilter{}, "", 10); err != nil || p.Total != 2 {
				t.Errorf("no filter on unbuilt indexes = %+v, %v; want both members", p, err)
			}
		},
		after: func(t *testing.T, f *checkFixture) {
			wantFilter(t, f, "one", storage.UserFilter{Source: storage.SourceJIT}, f.bobOne.ID)
			wantFilter(t, f, "two", storage.UserFilter{Verified: new(false)}, f.bobTw.ID)
		}},
	{name: "member filter entries dangling, stale and out of place",
		kinds: []string{redisstore.KindUserIndexDangling, redisstore.KindUserIndexStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			ctx := t.Context()
			must(t, f.c.ZAdd(ctx, f.ws("one", "ix:uf:a:0"), redis.Z{Score: 1, Member: f.aliceU.ID}).Err())
			must(t, f.c.SAdd(ctx, f.ws("one", "ix:uf"), "a:0", "rd:Admin").Err())
			must(t, f.c.ZAdd(ctx, f.ws("one", "ix:uf:rd:Admin"), redis.Z{Score: 7, Member: "ghost"}).Err())
			must(t, f.c.ZAdd(ctx, f.ws("one", "ix:uf:s:jit"), redis.Z{Score: 0.5, Member: f.bobOne.ID}).Err())
		},
		before: func(t *testing.T, f *checkFixture) {
			wantFilter(t, f, "one", storage.UserFilter{Active: new(false)}, f.aliceU.ID)
		},
		after: func(t *testing.T, f *checkFixture) {
			wantFilter(t, f, "one", storage.UserFilter{Active: new(false)})
			wantFilter(t, f, "one", storage.UserFilter{Roles: storage.Roles{Dev: storage.RoleAdmin}})
			wantFilter(t, f, "one", storage.UserFilter{Source: storage.SourceJIT}, f.bobOne.ID)
			pos, err := f.c.ZScore(t.Context(), f.ws("one", "ix:uo"), f.bobOne.ID).Result()
			must(t, err)
			if got, err := f.c.ZScore(t.Context(), f.ws("one", "ix:uf:s:jit"), f.bobOne.ID).Result(); err != nil || got != pos {
				t.Errorf("bob's JIT entry at %v (%v), want his creation position %v", got, err, pos)
			}
		}},
	// A store marked by the version with filters but no name index: the
	// filters answer, a name search refuses until the repair has built
	// the name entries and updated the marker.
	{name: "name index never built", kinds: []string{redisstore.KindNameIndexUnbuilt, redisstore.KindUserIndexMissing},
		corrupt: func(t *testing.T, f *checkFixture) {
			for _, ws := range []string{"one", "two"} {
				must(t, f.c.Del(t.Context(), f.ws(ws, "ix:udn")).Err())
				must(t, f.c.Set(t.Context(), f.ws(ws, "ix:ufv"), "1", 0).Err())
			}
		},
		before: func(t *testing.T, f *checkFixture) {
			if _, err := f.s.FindUsers(t.Context(), "one", storage.UserByName, "al", storage.FindOptions{}); !errors.Is(err, storage.ErrNotIndexed) {
				t.Errorf("a name search on an unbuilt index = %v, want ErrNotIndexed", err)
			}
			wantFilter(t, f, "one", storage.UserFilter{Source: storage.SourceJIT}, f.bobOne.ID)
		},
		after: func(t *testing.T, f *checkFixture) {
			wantNameSearch(t, f, "one", "al", f.aliceU.ID)
			wantNameSearch(t, f, "one", "BOB b", f.bobOne.ID)
		}},
	{name: "name index entries dangling and stale", kinds: []string{redisstore.KindUserIndexDangling, redisstore.KindUserIndexStale},
		corrupt: func(t *testing.T, f *checkFixture) {
			must(t, f.c.ZAdd(t.Context(), f.ws("one", "ix:udn"), redis.Z{Member: "ghost\x00ghost-id"},
				redis.Z{Member: "mallory\x00" + f.aliceU.ID}).Err())
		},
		before: func(t *testing.T, f *checkFixture) { wantNameSearch(t, f, "one", "mal", f.aliceU.ID) },
		after: func(t *testing.T, f *checkFixture) {
			wantNameSearch(t, f, "one", "mal")
			wantNameSearch(t, f, "one", "alice", f.aliceU.ID)
			wantNoMember(t, f, f.ws("one", "ix:udn"), "ghost\x00ghost-id")
		}},
}

// wantNameSearch checks the members a name search for prefix finds in ws.
func wantNameSearch(t *testing.T, f *checkFixture, ws, prefix string, want ...string) {
	t.Helper()
	found, err := f.s.FindUsers(t.Context(), ws, storage.UserByName, prefix, storage.FindOptions{})
	if err != nil {
		t.Fatalf("name search %q in %s: %v", prefix, ws, err)
	}
	got := []string{}
	for _, u := range found.Users {
		got = append(got, u.ID)
	}
	if !slices.Equal(got, append([]string{}, want...)) {
		t.Errorf("name search %q in %s = %v, want %v", prefix, ws, got, want)
	}
}

// wantFilter checks the members a filter finds in ws.
func wantFilter(t *testing.T, f *checkFixture, ws string, uf storage.UserFilter, want ...string) {
	t.Helper()
	p, err := f.s.ListUsersFiltered(t.Context(), ws, uf, "", 100)
	if err != nil {
		t.Fatalf("filter %+v in %s: %v", uf, ws, err)
	}
	var got []string
	for _, u := range p.Users {
		got = append(got, u.ID)
	}
	if !slices.Equal(got, want) || p.Total != len(want) {
		t.Errorf("filter %+v in %s = %v (total %d), want %v", uf, ws, got, p.Total, want)
	}
}

func wantNoMember(t *testing.T, f *checkFixture, key, member string) {
	t.Helper()
	if err := f.c.ZScore(t.Context(), key, member).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("%q still in %s (%v)", member, key, err)
	}
}

func wantTotal(t *testing.T, f *checkFixture, want int) {
	t.Helper()
	us, n, err := f.s.ListUsers(t.Context(), "one", 0, 10)
	if err != nil || n != want || len(us) != want {
		t.Errorf("ListUsers = %d of %d, %v; want %d", len(us), n, err, want)
	}
}

func wantGroupTotal(t *testing.T, f *checkFixture, want int) {
	t.Helper()
	gs, n, err := f.s.ListGroups(t.Context(), "one", 0, 10)
	if err != nil || n != want || len(gs) != want {
		t.Errorf("ListGroups = %d of %d, %v; want %d", len(gs), n, err, want)
	}
}

// checkBobRebuilt: bob's account is back, rebuilt from his memberships:
// its email, name and source from the oldest one, which also gives the
// origin and the creation time; sign-ins and joins work again.
func checkBobRebuilt(t *testing.T, f *checkFixture) {
	t.Helper()
	ctx := t.Context()
	a, created, err := f.s.GetOrCreateAccount(ctx, storage.Account{Email: "Bob@example.com"})
	if err != nil || created || a.ID != f.bob.ID {
		t.Fatalf("GetOrCreateAccount(bob) = %s created %v, %v; want bob's account", a.ID, created, err)
	}
	if a.Email != "bob@example.com" || a.FullName != "Bob B" || a.Source != storage.SourceJIT ||
		a.OriginWorkspace != "one" || !a.CreatedAt.Equal(f.bobOne.Created) {
		t.Errorf("rebuilt account = %+v, want it from bob's membership in one (created %v)", a, f.bobOne.Created)
	}
	for ws, uid := range map[string]string{"one": f.bobOne.ID, "two": f.bobTw.ID} {
		l, err := f.s.LoginLookup(ctx, ws, "bob@example.com")
		if err != nil || !l.Member || l.User.ID != uid {
			t.Errorf("bob's sign-in to %s = %+v, %v", ws, l, err)
		}
	}
	ms, err := f.s.AccountMemberships(ctx, f.bob.ID)
	if err != nil || len(ms) != 2 {
		t.Errorf("bob's memberships = %+v, %v", ms, err)
	}
}

// runCheckCases runs every case on a store of its own from newStore
// (with the given key prefix).
func runCheckCases(t *testing.T, newStore func(t *testing.T, prefix string) *redisstore.Store) {
	for i, tc := range checkCases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := fmt.Sprintf("c%d", i)
			f := newCheckFixture(t, newStore(t, prefix), prefix)
			ctx := t.Context()
			check := func(fix bool) redisstore.CheckReport {
				t.Helper()
				r, err := f.s.Check(ctx, redisstore.CheckOptions{Workspace: tc.workspace, Fix: fix})
				if err != nil {
					t.Fatalf("check (fix %v): %v", fix, err)
				}
				return r
			}
			if r := check(false); len(r.Problems) != 0 {
				t.Fatalf("the fixture is not clean: %+v", r.Problems)
			}
			tc.corrupt(t, f)
			if tc.before != nil {
				tc.before(t, f)
			}
			want := slices.Sorted(slices.Values(tc.kinds))
			found := check(false)
			if got := kindsOf(found); !slices.Equal(got, want) {
				t.Fatalf("found kinds %v, want %v: %+v", got, want, found.Problems)
			}
			for _, p := range found.Problems {
				if p.Fixed {
					t.Errorf("fixed without Fix: %+v", p)
				}
			}
			fixed := check(true)
			if got := kindsOf(fixed); !slices.Equal(got, want) {
				t.Fatalf("kinds with Fix %v, want %v: %+v", got, want, fixed.Problems)
			}
			for _, p := range fixed.Problems {
				if p.Fixed == reportOnly[p.Kind] {
					t.Errorf("fixed = %v for %+v", p.Fixed, p)
				}
			}
			again := check(true)
			for _, p := range again.Problems {
				if p.Fixed || !reportOnly[p.Kind] {
					t.Errorf("left after the fix: %+v", p)
				}
			}
			if again.Left() != len(again.Problems) {
				t.Errorf("Left() = %d of %d problems", again.Left(), len(again.Problems))
			}
			if tc.after != nil {
				tc.after(t, f)
			}
		})
	}
}

// TestCheckFindsAndFixesEveryKind runs every corruption on a redis-server
// (one server, a key prefix per case, so a case that strayed out of its
// prefix would make the next one's fixture look unclean).
func TestCheckFindsAndFixesEveryKind(t *testing.T) {
	srv := redistest.Start(t)
	runCheckCases(t, func(t *testing.T, prefix string) *redisstore.Store {
		s := redisstore.New(redis.NewClient(srv.Options()), prefix)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
	kinds := map[string]bool{}
	for _, tc := range checkCases {
		for _, k := range tc.kinds {
			kinds[k] = true
		}
	}
	for _, k := range allKinds {
		if !kinds[k] {
			t.Errorf("no case produces %s", k)
		}
	}
}

// allKinds lists every Kind* constant.
var allKinds = []string{
	redisstore.KindUserIndexDangling, redisstore.KindUserIndexStale, redisstore.KindUserIndexMissing,
	redisstore.KindUserUniqueConflict, redisstore.KindUserRecordInvalid, redisstore.KindUserAccountMissing,
	redisstore.KindIndexKeyNotFolded, redisstore.KindAccountBackPointerMissing, redisstore.KindAccountBackPointerStale,
	redisstore.KindSequenceBehind, redisstore.KindLegacyIndex, redisstore.KindGroupRecordInvalid,
	redisstore.KindGroupIndexDangling, redisstore.KindGroupIndexStale, redisstore.KindGroupIndexMissing,
	redisstore.KindGroupUniqueConflict, redisstore.KindGroupMemberDangling, redisstore.KindGroupMemberIndexMissing,
	redisstore.KindGroupMemberIndexStale, redisstore.KindGroupMembersOrphan, redisstore.KindWorkspaceUnregistered,
	redisstore.KindWorkspaceRegistryDangling, redisstore.KindEmailIndexDangling, redisstore.KindEmailIndexWrongAccount,
	redisstore.KindAccountUnpublished, redisstore.KindAccountUnindexed, redisstore.KindAccountEmailConflict,
	redisstore.KindAccountRecordInvalid, redisstore.KindDomainIndexMissing, redisstore.KindDomainIndexStale,
	redisstore.KindFilterIndexUnbuilt, redisstore.KindNameIndexUnbuilt,
}

// TestCheckOnCluster runs every corruption through the Cluster client on a
// one-node Redis Cluster: the repair scripts stay in one hash slot (a
// cluster refuses others with CROSSSLOT) and SCAN goes through each
// master.
func TestCheckOnCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 1)
	runCheckCases(t, func(t *testing.T, prefix string) *redisstore.Store {
		s := redisstore.New(redis.NewClusterClient(cl.Options()), prefix)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestCheckLeavesYoungAccountsAlone: an unpublished account record younger
// than the grace period may be a create in flight; it is neither reported
// nor deleted, and its back-pointers are kept.
func TestCheckLeavesYoungAccountsAlone(t *testing.T) {
	ctx := t.Context()
	s := redistest.NewRedisStore(t)
	f := newCheckFixture(t, s, "sj")
	// A JIT sign-in on a Cluster between its first step (the record with
	// its back-pointer) and the next.
	must(t, f.c.HSet(ctx, f.acct("in-flight"), "v", "1", "e", "new@example.com", "n", "", "s", "jit", "o", "one",
		"c", strconv.FormatInt(time.Now().UnixMicro(), 10), "w:one", "1").Err())
	r, err := s.Check(ctx, redisstore.CheckOptions{Fix: true})
	if err != nil || len(r.Problems) != 0 {
		t.Fatalf("check = %+v, %v; want nothing", r.Problems, err)
	}
	if n, _ := f.c.HLen(ctx, f.acct("in-flight")).Result(); n != 7 {
		t.Errorf("the young record has %d fields left, want all 7", n)
	}
	// Once older than the grace period, it is a leftover.
	r, err = s.Check(ctx, redisstore.CheckOptions{Fix: true, Grace: time.Nanosecond})
	if err != nil || !slices.Equal(kindsOf(r), []string{redisstore.KindAccountBackPointerStale, redisstore.KindAccountUnpublished}) {
		t.Fatalf("check with a short grace = %+v, %v", r.Problems, err)
	}
	wantNoKey(t, f, f.acct("in-flight"))
}

// TestCheckCleanStoreReportsNothing builds a store through the public API
// only (SCIM users and groups, JIT sign-ins, joins, renames, deletes) and
// checks that Check finds nothing in it, on a single server and on a
// Cluster, and counts what it walked.
func TestCheckCleanStoreReportsNothing(t *testing.T) {
	cl := redistest.StartCluster(t, 1)
	for name, s := range map[string]*redisstore.Store{
		"server":  redistest.NewRedisStore(t),
		"cluster": redisstore.New(redis.NewClusterClient(cl.Options()), "sj"),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			buildCleanStore(t, s)
			for _, ws := range []string{"", "one", "two"} {
				r, err := s.Check(ctx, redisstore.CheckOptions{Workspace: ws})
				if err != nil || len(r.Problems) != 0 {
					t.Fatalf("check %q = %+v, %v; want nothing", ws, r.Problems, err)
				}
				if ws == "" && (r.Workspaces != 2 || r.Users != 25 || r.Groups != 2 || r.Accounts != 20) {
					t.Errorf("walked %+v", r)
				}
			}
			r, err := s.Check(ctx, redisstore.CheckOptions{Fix: true})
			if err != nil || len(r.Problems) != 0 {
				t.Fatalf("check with Fix = %+v, %v; want nothing", r.Problems, err)
			}
		})
	}
}

// buildCleanStore: two workspaces (a third is deleted), 10 JIT sign-ins
// in one, 10 SCIM users in two, 4 of the JIT people join two, one person
// signs in to two; groups with changes; a rename, an email change, a
// deleted user.
func buildCleanStore(t *testing.T, s *redisstore.Store) {
	ctx := t.Context()
	for _, ws := range []string{"one", "two", "three"} {
		_, err := s.CreateWorkspace(ctx, storage.Workspace{ID: ws})
		must(t, err)
	}
	var jit []storage.JITUser
	for i := range 10 {
		email := fmt.Sprintf("jit%d@example.com", i)
		j, err := s.CreateJITUser(ctx, "one", storage.JITUser{
			Account: storage.Account{Email: email, Source: storage.SourceJIT, OriginWorkspace: "one"},
			User:    storage.User{UserName: email, Emails: []string{email}, Active: true, Verified: true, Source: storage.SourceJIT},
			Session: storage.Session{Key: "sess-" + email, ActiveWorkspace: "one", ExpiresAt: time.Now().Add(time.Hour)},
			Events:  []storage.Event{{Type: "jit.user.created"}},
		})
		must(t, err)
		jit = append(jit, j)
	}
	var scim []storage.User
	for i := range 10 {
		email := fmt.Sprintf("Scim%d@Example.com", i)
		a, _, err := s.GetOrCreateAccount(ctx, storage.Account{Email: email, Source: storage.SourceSCIM, OriginWorkspace: "two"})
		must(t, err)
		u, err := s.CreateUser(ctx, "two", storage.User{AccountID: a.ID, UserName: email, ExternalID: fmt.Sprintf("x%d", i%3),
			Emails: []string{email, fmt.Sprintf("other%d@example.com", i)}, Active: true})
		must(t, err)
		scim = append(scim, u)
	}
	var joined []string
	for _, j := range jit[:4] {
		for _, ws := range []string{"two", "three"} {
			u, err := s.CreateUser(ctx, ws, storage.User{AccountID: j.Account.ID, UserName: j.Account.Email,
				Emails: []string{j.Account.Email}})
			must(t, err)
			if ws == "two" {
				joined = append(joined, u.ID)
			}
		}
	}
	// A SCIM person signs in to one by JIT: a new membership of the account.
	_, err := s.CreateUser(ctx, "one", storage.User{AccountID: scim[0].AccountID, UserName: scim[0].UserName})
	must(t, err)
	g, err := s.CreateGroup(ctx, "two", storage.Group{DisplayName: "Staff", ExternalID: "gx",
		Members: []string{scim[0].ID, scim[1].ID, joined[0]}})
	must(t, err)
	_, err = s.ChangeGroup(ctx, "two", g.ID, storage.GroupChange{AddMembers: joined[1:], RemoveMembers: []string{scim[1].ID}})
	must(t, err)
	name := "Everyone"
	_, err = s.ChangeGroup(ctx, "two", g.ID, storage.GroupChange{DisplayName: &name})
	must(t, err)
	g2, err := s.CreateGroup(ctx, "two", storage.Group{DisplayName: "Gone", Members: []string{scim[2].ID}})
	must(t, err)
	must(t, s.DeleteGroup(ctx, "two", g2.ID, 0))
	_, err = s.CreateGroup(ctx, "two", storage.Group{DisplayName: "Empty", ExternalID: "gx"})
	must(t, err)
	_, err = s.UpdateUser(ctx, "two", scim[3].ID, 0, func(u *storage.User) error {
		u.UserName, u.ExternalID, u.Emails = "renamed@example.com", "x-new", []string{"new@example.com"}
		return nil
	})
	must(t, err)
	must(t, s.DeleteUser(ctx, "two", scim[0].ID, 0))
	must(t, s.DeleteWorkspace(ctx, "three"))
	_, err = s.CreateUser(ctx, "one", storage.User{AccountID: scim[5].AccountID, UserName: scim[5].UserName})
	must(t, err)
}

// TestCheckWalksBigIndexesInBatches: more entries than one SCAN step asks
// for, so every walk takes several steps, and every damaged entry is
// found and repaired.
func TestCheckWalksBigIndexesInBatches(t *testing.T) {
	ctx := t.Context()
	s := redistest.NewRedisStore(t)
	_, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "big"})
	must(t, err)
	const n = 1200
	var ids, accts []string
	for i := range n {
		email := fmt.Sprintf("u%d@example.com", i)
		a, _, err := s.GetOrCreateAccount(ctx, storage.Account{Email: email})
		must(t, err)
		u, err := s.CreateUser(ctx, "big", storage.User{AccountID: a.ID, UserName: email, ExternalID: "x" + email,
			Emails: []string{email, "alt" + email}})
		must(t, err)
		ids, accts = append(ids, u.ID), append(accts, a.ID)
	}
	_, err = s.CreateGroup(ctx, "big", storage.Group{DisplayName: "All", Members: ids})
	must(t, err)
	// Every tenth user loses its order entry, every seventh account its
	// back-pointer. A user put back in order at a new position has its two
	// member filter entries (deactivated, pending) moved there too.
	c := s.Client()
	broken := 0
	for i := 0; i < n; i += 10 {
		must(t, c.ZRem(ctx, "sj:{ws:big}:ix:uo", ids[i]).Err())
		broken += 3
	}
	for i := 0; i < n; i += 7 {
		must(t, c.HDel(ctx, "sj:{acct:"+accts[i]+"}:a", "w:big").Err())
		broken++
	}
	r, err := s.Check(ctx, redisstore.CheckOptions{Fix: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Users != n || r.Accounts != n || r.Groups != 1 || len(r.Problems) != broken || r.Left() != 0 {
		t.Errorf("walked %d users, %d accounts, %d groups, %d problems (%d left); want %d, %d, 1, %d fixed",
			r.Users, r.Accounts, r.Groups, len(r.Problems), r.Left(), n, n, broken)
	}
	if _, total, err := s.ListUsers(ctx, "big", 0, 1); err != nil || total != n {
		t.Errorf("total after the repair = %d, %v", total, err)
	}
	if r, err := s.Check(ctx, redisstore.CheckOptions{}); err != nil || len(r.Problems) != 0 {
		t.Errorf("after the repair: %+v, %v", r.Problems, err)
	}
}

// TestCheckIsSafeOnALiveStore runs Check with Fix again and again while
// JIT sign-ins, joins, SCIM creates, renames and deletes and group changes
// run. The store is consistent at every moment, so a problem found (and
// "repaired") then would be a request undone. Afterwards every
// acknowledged write is there and a last Check finds nothing.
func TestCheckIsSafeOnALiveStore(t *testing.T) {
	ctx := t.Context()
	s := redistest.NewRedisStore(t)
	for _, ws := range []string{"one", "two"} {
		_, err := s.CreateWorkspace(ctx, storage.Workspace{ID: ws})
		must(t, err)
	}
	g, err := s.CreateGroup(ctx, "one", storage.Group{DisplayName: "Everyone"})
	must(t, err)
	type alive struct{ ws, id, userName string }
	var mu sync.Mutex
	var users []alive
	var jitEmails []string
	const workers, rounds = 4, 40
	var wg sync.WaitGroup
	var stop atomic.Bool
	errs := make(chan error, workers+1)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				if err := liveRound(ctx, s, g.ID, w, i, func(ws, id, userName string) {
					mu.Lock()
					defer mu.Unlock()
					users = append(users, alive{ws, id, userName})
				}, func(email string) {
					mu.Lock()
					defer mu.Unlock()
					jitEmails = append(jitEmails, email)
				}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	checks := 0
	var found []redisstore.Problem
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			r, err := s.Check(ctx, redisstore.CheckOptions{Fix: true})
			if err != nil {
				errs <- err
				return
			}
			checks++
			found = append(found, r.Problems...)
		}
	}()
	wg.Wait()
	stop.Store(true)
	<-done
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(found) != 0 {
		t.Fatalf("Check repaired a consistent store under load (%d runs): %+v", checks, found)
	}
	t.Logf("%d checks ran during the load", checks)
	r, err := s.Check(ctx, redisstore.CheckOptions{})
	if err != nil || len(r.Problems) != 0 {
		t.Fatalf("after the load: %+v, %v", r.Problems, err)
	}
	for _, u := range users {
		if got := findUsersOf(t, s, u.ws, u.userName); !slices.Contains(got, u.id) {
			t.Errorf("user %s (%s) in %s not found by its userName: %v", u.id, u.userName, u.ws, got)
		}
	}
	for _, e := range jitEmails {
		if l, err := s.LoginLookup(ctx, "one", e); err != nil || !l.Member {
			t.Errorf("sign-in lookup of %s = %+v, %v", e, l, err)
		}
	}
}

func findUsersOf(t *testing.T, s *redisstore.Store, ws, userName string) []string {
	t.Helper()
	found, err := s.FindUsers(t.Context(), ws, storage.UserByUserName, userName, storage.FindOptions{})
	must(t, err)
	var ids []string
	for _, u := range found.Users {
		ids = append(ids, u.ID)
	}
	return ids
}

// liveRound is one worker's round of TestCheckIsSafeOnALiveStore: a JIT
// sign-in in one that joins two and the group; a group that is renamed
// and every other round deleted; a SCIM user in two that is renamed, and
// every third round deleted. keep records the memberships
// that must survive, jit the signed-in emails.
func liveRound(ctx context.Context, s *redisstore.Store, gid string, w, i int, keep func(ws, id, userName string), jit func(string)) error {
	email := fmt.Sprintf("live-%d-%d@example.com", w, i)
	j, err := s.CreateJITUser(ctx, "one", storage.JITUser{
		Account: storage.Account{Email: email, Source: storage.SourceJIT, OriginWorkspace: "one"},
		User:    storage.User{UserName: email, Emails: []string{email}, Active: true, Verified: true},
		Session: storage.Session{Key: "sess-" + email, ActiveWorkspace: "one", ExpiresAt: time.Now().Add(time.Hour)},
	})
	if err != nil {
		return fmt.Errorf("jit %s: %w", email, err)
	}
	keep("one", j.User.ID, email)
	jit(email)
	joined, err := s.CreateUser(ctx, "two", storage.User{AccountID: j.Account.ID, UserName: email, Emails: []string{email}})
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	keep("two", joined.ID, email)
	if _, err := s.ChangeGroup(ctx, "one", gid, storage.GroupChange{AddMembers: []string{j.User.ID}}); err != nil {
		return fmt.Errorf("group add: %w", err)
	}
	tg, err := s.CreateGroup(ctx, "one", storage.Group{DisplayName: fmt.Sprintf("team %d %d", w, i),
		ExternalID: fmt.Sprintf("gx-%d", i), Members: []string{j.User.ID}})
	if err != nil {
		return fmt.Errorf("group create: %w", err)
	}
	name := fmt.Sprintf("renamed team %d %d", w, i)
	if _, err := s.ChangeGroup(ctx, "one", tg.ID, storage.GroupChange{DisplayName: &name}); err != nil {
		return fmt.Errorf("group rename: %w", err)
	}
	if i%2 == 1 {
		if err := s.DeleteGroup(ctx, "one", tg.ID, 0); err != nil {
			return fmt.Errorf("group delete: %w", err)
		}
	}
	scimEmail := fmt.Sprintf("scim-%d-%d@example.com", w, i)
	a, _, err := s.GetOrCreateAccount(ctx, storage.Account{Email: scimEmail, OriginWorkspace: "two"})
	if err != nil {
		return fmt.Errorf("account: %w", err)
	}
	u, err := s.CreateUser(ctx, "two", storage.User{AccountID: a.ID, UserName: scimEmail, ExternalID: "x" + scimEmail,
		Emails: []string{scimEmail, "alt-" + scimEmail}})
	if err != nil {
		return fmt.Errorf("scim create: %w", err)
	}
	renamed := "renamed-" + scimEmail
	if _, err := s.UpdateUser(ctx, "two", u.ID, 0, func(x *storage.User) error {
		x.UserName, x.Emails, x.ExternalID = renamed, []string{renamed}, "y"+scimEmail
		return nil
	}); err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	if i%3 == 0 {
		if err := s.DeleteUser(ctx, "two", u.ID, 0); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		if i%2 == 0 {
			if _, err := s.ChangeGroup(ctx, "one", gid, storage.GroupChange{RemoveMembers: []string{j.User.ID}}); err != nil {
				return fmt.Errorf("group remove: %w", err)
			}
		}
		return nil
	}
	keep("two", u.ID, renamed)
	return nil
}
