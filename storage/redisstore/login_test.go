package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// stepHook counts the client's round trips (a command or a whole pipeline
// each) and, when failAt > 0, fails round trip number failAt before it
// reaches Redis: the state a crash at that point leaves behind.
type stepHook struct {
	n      atomic.Int64
	failAt atomic.Int64
}

var errCrash = errors.New("simulated crash")

func (h *stepHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *stepHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.n.Add(1) == h.failAt.Load() {
			cmd.SetErr(errCrash)
			return errCrash
		}
		return next(ctx, cmd)
	}
}

func (h *stepHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.n.Add(1) == h.failAt.Load() {
			for _, c := range cmds {
				c.SetErr(errCrash)
			}
			return errCrash
		}
		return next(ctx, cmds)
	}
}

// loginStore is a store with workspace "one" whose scripts are loaded (a
// first sign-in happened), and a hook on its client.
func loginStore(t *testing.T) (*redisstore.Store, *stepHook) {
	t.Helper()
	return loginStoreOn(t, redistest.NewRedisStore(t))
}

// clusterLoginStore is loginStore on a Redis Cluster (one node), where
// CreateAccountAndUser takes its ordered cross-slot steps.
func clusterLoginStore(t *testing.T) (*redisstore.Store, *stepHook) {
	t.Helper()
	c := redis.NewClusterClient(redistest.StartCluster(t, 1).Options())
	s := redisstore.New(c, "sj")
	t.Cleanup(func() { _ = s.Close() })
	return loginStoreOn(t, s)
}

func loginStoreOn(t *testing.T, s *redisstore.Store) (*redisstore.Store, *stepHook) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "one"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateAccountAndUser(ctx, "one", storage.Account{Email: "warm@example.com"},
		storage.User{UserName: "warm@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, _, has, err := s.LoginLookup(ctx, "one", "warm@example.com"); err != nil || !has {
		t.Fatalf("warm-up lookup: %v %v", has, err)
	}
	h := &stepHook{}
	s.Client().AddHook(h)
	return s, h
}

// TestLoginRoundTrips pins the number of round trips of the sign-in
// methods (the point of having them): a look-up of a member is two, of an
// unknown email one, a JIT creation one (three on a Cluster), also with the
// sign-in's session and events.
func TestLoginRoundTrips(t *testing.T) {
	ctx := t.Context()
	s, h := loginStore(t)
	count := func(what string, want int64, f func() error) {
		t.Helper()
		before := h.n.Load()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := h.n.Load() - before; got != want {
			t.Errorf("%s: %d round trips, want %d", what, got, want)
		}
	}
	count("create account and user", 1, func() error {
		_, _, err := s.CreateAccountAndUser(ctx, "one", storage.Account{Email: "new@example.com"},
			storage.User{UserName: "new@example.com"})
		return err
	})
	count("create account, user, session and events", 1, func() error {
		n := time.Now()
		r, err := s.CreateAccountAndUserWithSession(ctx, "one", storage.Account{Email: "jit@example.com"},
			storage.User{UserName: "jit@example.com"}, storage.Session{Key: "rt", CreatedAt: n, ExpiresAt: n.Add(time.Hour)},
			[]storage.Event{{Type: "jit.user.created"}, {Type: "login.succeeded"}})
		if err == nil {
			err = errors.Join(r.SessionErr, r.EventsErr)
		}
		return err
	})
	count("look up a member", 2, func() error {
		_, _, has, err := s.LoginLookup(ctx, "one", "new@example.com")
		if err == nil && !has {
			err = errors.New("membership not found")
		}
		return err
	})
	count("look up an unknown email", 1, func() error {
		_, _, _, err := s.LoginLookup(ctx, "one", "nobody@example.com")
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return errors.New("unknown email found")
	})
	orCreate := func(key, email string) (storage.ConsumeLookup, error) {
		n := time.Now()
		return s.ConsumeOnceAndLoginLookupOrCreate(ctx, "one", key, n.Add(time.Minute), email, &storage.JITCreate{
			Account: storage.Account{Email: email}, User: storage.User{UserName: email},
			Session: storage.Session{Key: "s-" + key, CreatedAt: n, ExpiresAt: n.Add(time.Hour)},
			Events:  []storage.Event{{Type: "jit.user.created"}, {Type: "login.succeeded"}}})
	}
	if _, err := orCreate("warm", "warm-jit@example.com"); err != nil { // loads the script
		t.Fatal(err)
	}
	count("consume, look up and create a JIT sign-in", 1, func() error {
		r, err := orCreate("k1", "first@example.com")
		if err == nil && (!r.Created || r.CreateErr != nil) {
			err = fmt.Errorf("not created: %+v", r)
		}
		return err
	})
	count("consume and look up a member, creation dropped", 2, func() error {
		r, err := orCreate("k2", "first@example.com")
		if err == nil && (r.Created || !r.HasMember) {
			err = fmt.Errorf("member not found: %+v", r)
		}
		return err
	})
	count("replayed", 1, func() error {
		r, err := orCreate("k2", "second@example.com")
		if err == nil && (r.First || r.Created) {
			err = fmt.Errorf("replay accepted: %+v", r)
		}
		return err
	})
}

// TestCreateAccountAndUserCrashOrder: a crash before the email index is
// written leaves nothing visible and a retry succeeds; a crash after it
// and before the membership leaves the account without membership, which
// CreateUser (the next sign-in) completes. On a single server the record,
// the index entry and the membership are one script (round trip 1), so
// the second crash has no place to fall; on a Cluster the record and the
// HSETNX are two ordered round trips (the first crash falls on the HSETNX,
// round trip 2) and the membership script follows (round trip 3).
func TestCreateAccountAndUserCrashOrder(t *testing.T) {
	for _, tc := range []struct {
		name            string
		open            func(*testing.T) (*redisstore.Store, *stepHook)
		publish, member int64
		publishCalls    int64
	}{
		{"single", loginStore, 1, 0, 1},
		{"cluster", clusterLoginStore, 2, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testCreateAccountAndUserCrashOrder(t, tc.open, tc.publish, tc.member, tc.publishCalls)
		})
	}
}

func testCreateAccountAndUserCrashOrder(t *testing.T, open func(*testing.T) (*redisstore.Store, *stepHook), publishAt, memberAt, calls int64) {
	ctx := t.Context()
	s, h := open(t)
	create := func(email string) (storage.Account, storage.User, error) {
		return s.CreateAccountAndUser(ctx, "one", storage.Account{Email: email, OriginWorkspace: "one"},
			storage.User{UserName: email, Active: true, Verified: true})
	}

	before := h.n.Load()
	if _, _, err := create("first@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := h.n.Load() - before; got != calls {
		t.Errorf("create: %d round trips, want %d", got, calls)
	}

	h.failAt.Store(h.n.Load() + publishAt) // the email index is written here
	if _, _, err := create("early@example.com"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("crash before publishing: %v", err)
	}
	if _, _, _, err := s.LoginLookup(ctx, "one", "early@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("account visible after a crash before publishing: %v", err)
	}
	if _, n, err := s.ListUsers(ctx, "one", 0, 10); err != nil || n != 2 {
		t.Fatalf("users = %d, %v; want the warm-up user and first@", n, err)
	}
	a, u, err := create("early@example.com")
	if err != nil || u.AccountID != a.ID {
		t.Fatalf("retry: %+v %+v %v", a, u, err)
	}

	var acct storage.Account
	if memberAt > 0 {
		h.failAt.Store(h.n.Load() + memberAt) // the membership script
		if _, _, err := create("late@example.com"); !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("crash before the membership: %v", err)
		}
		var has bool
		acct, _, has, err = s.LoginLookup(ctx, "one", "late@example.com")
		if err != nil || has || acct.OriginWorkspace != "one" {
			t.Fatalf("after a crash before the membership: %+v %v %v; want the account without membership", acct, has, err)
		}
		if ms, err := s.AccountMemberships(ctx, acct.ID); err != nil || len(ms) != 0 {
			t.Fatalf("memberships with only a back-pointer = %+v, %v", ms, err)
		}
		u, err = s.CreateUser(ctx, "one", storage.User{AccountID: acct.ID, UserName: "late@example.com"})
		if err != nil {
			t.Fatal(err)
		}
	} else if acct, u, err = create("late@example.com"); err != nil {
		t.Fatal(err)
	}
	if ms, err := s.AccountMemberships(ctx, acct.ID); err != nil || len(ms) != 1 || ms[0].UserID != u.ID {
		t.Fatalf("memberships after completing = %+v, %v", ms, err)
	}

	// A second create of a published email writes nothing and reports
	// the conflict.
	if _, _, err := create("late@example.com"); err == nil {
		t.Fatal("second create of late@ succeeded")
	} else {
		var ce *storage.ConflictError
		if !errors.As(err, &ce) || ce.Field != "email" {
			t.Fatalf("second create of late@: %v, want ConflictError email", err)
		}
	}
	if got, err := s.GetAccountByEmail(ctx, "late@example.com"); err != nil || got.ID != acct.ID {
		t.Fatalf("late@ = %+v, %v; want %s", got, err, acct.ID)
	}
}

// TestCreateAccountAndUserMissingWorkspaceWritesNothing: on a single
// server the one script checks the workspace before anything else, so a
// first sign-in into a missing workspace leaves no account behind (the
// Store contract allows one, which a Cluster's ordered steps may leave).
func TestCreateAccountAndUserMissingWorkspaceWritesNothing(t *testing.T) {
	ctx := t.Context()
	s, _ := loginStore(t)
	n := time.Now()
	_, err := s.CreateAccountAndUserWithSession(ctx, "gone", storage.Account{Email: "gone@example.com"},
		storage.User{UserName: "gone@example.com"}, storage.Session{Key: "gone", CreatedAt: n, ExpiresAt: n.Add(time.Hour)},
		[]storage.Event{{Type: "jit.user.created"}})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if _, err := s.GetAccountByEmail(ctx, "gone@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("account after a missing workspace: %v", err)
	}
	if _, err := s.GetSession(ctx, "gone"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("session after a missing workspace: %v", err)
	}
}

// TestConsumeLookupCreateCrossSlotFallback: a plain client on a cluster
// node, which refuses scripts whose keys span hash slots (CROSSSLOT),
// still consumes, looks up and creates, through the ordered calls; the
// refused script wrote nothing (the key is consumed once, by the
// fallback).
func TestConsumeLookupCreateCrossSlotFallback(t *testing.T) {
	ctx := t.Context()
	s := redisstore.New(redis.NewClient(redistest.StartCluster(t, 1).Node(0).Options()), "plain")
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "one"}); err != nil {
		t.Fatal(err)
	}
	n := time.Now()
	orCreate := func(key string) (storage.ConsumeLookup, error) {
		return s.ConsumeOnceAndLoginLookupOrCreate(ctx, "one", key, n.Add(time.Minute), "p@example.com", &storage.JITCreate{
			Account: storage.Account{Email: "p@example.com"}, User: storage.User{UserName: "p@example.com"},
			Session: storage.Session{Key: "s-" + key, CreatedAt: n, ExpiresAt: n.Add(time.Hour)},
			Events:  []storage.Event{{Type: "login.succeeded"}}})
	}
	r, err := orCreate("k")
	if err != nil || !r.First || !r.Created || r.CreateErr != nil || r.JIT.SessionErr != nil || r.JIT.EventsErr != nil {
		t.Fatalf("first sign-in = %+v, %v", r, err)
	}
	if _, err := s.GetUserByAccount(ctx, "one", r.JIT.Account.ID); err != nil {
		t.Fatalf("membership: %v", err)
	}
	if r, err := orCreate("k"); err != nil || r.First || r.Created {
		t.Fatalf("replay = %+v, %v", r, err)
	}
	if r, err := orCreate("k2"); err != nil || !r.First || r.Created || !r.HasMember {
		t.Fatalf("known person = %+v, %v", r, err)
	}
}
