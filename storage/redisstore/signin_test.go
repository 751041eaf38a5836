package redisstore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// stepHook counts the client's round trips (a command or a whole pipeline
// each). When failAt is round trip number n, that round trip fails before
// it reaches Redis (the state a crash at that point leaves behind); when
// loseAt is, it runs in Redis but its reply is lost (a connection cut or
// a timeout after the request was written).
type stepHook struct {
	n      atomic.Int64
	failAt atomic.Int64
	loseAt atomic.Int64
	// loseCmd, when set, loses the reply of the next command of that name;
	// dupCmd delivers the next command of that name ("script" for a
	// script) twice and returns the second reply (what a client-level
	// re-send after a timeout did).
	loseCmd, dupCmd atomic.Value
}

var errCrash = errors.New("simulated crash")

func (h *stepHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *stepHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		n := h.n.Add(1)
		if n == h.failAt.Load() {
			cmd.SetErr(errCrash)
			return errCrash
		}
		err := next(ctx, cmd)
		name := cmd.Name()
		if name == "evalsha" || name == "eval" {
			name = "script" // a script, by whichever command it ran
		}
		if !redis.HasErrorPrefix(err, "NOSCRIPT") && h.dupCmd.CompareAndSwap(name, "") {
			return next(ctx, cmd)
		}
		if n == h.loseAt.Load() || h.loseCmd.CompareAndSwap(cmd.Name(), "") {
			cmd.SetErr(errCrash)
			return errCrash
		}
		return err
	}
}

func (h *stepHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		n := h.n.Add(1)
		if n == h.failAt.Load() {
			for _, c := range cmds {
				c.SetErr(errCrash)
			}
			return errCrash
		}
		err := next(ctx, cmds)
		if n == h.loseAt.Load() {
			for _, c := range cmds {
				c.SetErr(errCrash)
			}
			return errCrash
		}
		return err
	}
}

// signInStore is a store with workspace "one" whose scripts are loaded (a
// first sign-in happened), and a hook on its client.
func signInStore(t *testing.T) (*redisstore.Store, *stepHook) {
	t.Helper()
	return signInStoreOn(t, redistest.NewRedisStore(t))
}

// clusterSignInStore is signInStore on a Redis Cluster (one node), where
// CreateJITUser takes its ordered steps.
func clusterSignInStore(t *testing.T) (*redisstore.Store, *stepHook) {
	t.Helper()
	c := redis.NewClusterClient(redistest.StartCluster(t, 1).Options())
	s := redisstore.New(c, "sj")
	t.Cleanup(func() { _ = s.Close() })
	return signInStoreOn(t, s)
}

func signInStoreOn(t *testing.T, s *redisstore.Store) (*redisstore.Store, *stepHook) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "one"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateJITUser(ctx, "one", jitUser("warm@example.com")); err != nil {
		t.Fatal(err)
	}
	if l, err := s.LoginLookup(ctx, "one", "warm@example.com"); err != nil || !l.Member {
		t.Fatalf("warm-up lookup: %+v %v", l, err)
	}
	h := &stepHook{}
	h.loseCmd.Store("")
	h.dupCmd.Store("")
	s.Client().AddHook(h)
	return s, h
}

// jitUser is a first sign-in of email into "one", with fixed ids so that
// a test can re-send it.
func jitUser(email string) storage.JITUser {
	n := time.Now()
	return storage.JITUser{
		Account: storage.Account{ID: "acct-" + storage.NewID(), Email: email, OriginWorkspace: "one", CreatedAt: n},
		User:    storage.User{ID: "user-" + storage.NewID(), UserName: email, Active: true, Verified: true, Created: n},
		Session: storage.Session{Key: "sess-" + storage.NewID(), ActiveWorkspace: "one", CreatedAt: n,
			ExpiresAt: n.Add(time.Hour)},
		Events: []storage.Event{{Type: "jit.user.created"}, {Type: "login.succeeded"}},
	}
}

// TestSignInRoundTrips pins the round trips of the sign-in methods (the
// point of having them): a look-up of a member is two, of an unknown email
// one, a JIT creation one on a single server, receiving a response one,
// accepting a member's login two, starting a session with its events one.
func TestSignInRoundTrips(t *testing.T) {
	ctx := t.Context()
	s, h := signInStore(t)
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
	count("create account, user, session and events", 1, func() error {
		_, err := s.CreateJITUser(ctx, "one", jitUser("jit@example.com"))
		return err
	})
	count("look up a member", 2, func() error {
		l, err := s.LoginLookup(ctx, "one", "jit@example.com")
		if err == nil && !l.Member {
			err = errors.New("membership not found")
		}
		return err
	})
	count("look up an unknown email", 1, func() error {
		_, err := s.LoginLookup(ctx, "one", "nobody@example.com")
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return errors.New("unknown email found")
	})
	if err := s.PutTemp(ctx, "one", "authn:x", []byte("req"), time.Minute); err != nil {
		t.Fatal(err)
	}
	// The first use of a script on a server loads it (one more round trip).
	if _, err := s.AcceptLogin(ctx, "one", storage.Once{Key: "warm", Until: time.Now().Add(time.Minute)}, "jit@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.StartSession(ctx, storage.Session{Key: "warm", ActiveWorkspace: "one", ExpiresAt: time.Now().Add(time.Hour)},
		storage.Event{Type: "login.succeeded"}); err != nil {
		t.Fatal(err)
	}
	count("receive a response", 1, func() error {
		r, err := s.ReceiveResponse(ctx, "one", "authn:x")
		if err == nil && string(r.Request) != "req" {
			err = errors.New("tracked request not taken")
		}
		return err
	})
	count("accept a member's login", 2, func() error {
		l, err := s.AcceptLogin(ctx, "one", storage.Once{Key: "a1", Until: time.Now().Add(time.Minute)}, "jit@example.com")
		if err == nil && !l.Member {
			err = errors.New("membership not found")
		}
		return err
	})
	count("accept a replay", 1, func() error {
		l, err := s.AcceptLogin(ctx, "one", storage.Once{Key: "a1", Until: time.Now().Add(time.Minute)}, "jit@example.com")
		if err == nil && !l.Replayed {
			err = errors.New("replay accepted")
		}
		return err
	})
	count("start a session with its events", 1, func() error {
		return s.StartSession(ctx, storage.Session{Key: "s1", ActiveWorkspace: "one", ExpiresAt: time.Now().Add(time.Hour)},
			storage.Event{Type: "login.succeeded"})
	})
}

// TestPipelinedScriptsLoad: a script sent in a pipeline to a server that
// does not have it (a restart, or SCRIPT FLUSH) is run on its own, which
// loads it, and runs once: a first use of an assertion is still accepted
// once.
func TestPipelinedScriptsLoad(t *testing.T) {
	for _, d := range []struct {
		name string
		open func(t *testing.T) (*redisstore.Store, *stepHook)
	}{{"single", signInStore}, {"cluster", clusterSignInStore}} {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			s, _ := d.open(t)
			flush := func() {
				t.Helper()
				var err error
				if cc, ok := s.Client().(*redis.ClusterClient); ok {
					err = cc.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
						return c.ScriptFlush(ctx).Err()
					})
				} else {
					err = s.Client().ScriptFlush(ctx).Err()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			once := storage.Once{Key: "a1", Until: time.Now().Add(time.Minute)}
			flush()
			if l, err := s.AcceptLogin(ctx, "one", once, "warm@example.com"); err != nil || !l.Member || l.Replayed {
				t.Fatalf("first accept after the flush: %+v, %v", l, err)
			}
			flush()
			if l, err := s.AcceptLogin(ctx, "one", once, "warm@example.com"); err != nil || !l.Replayed {
				t.Fatalf("replay after the flush: %+v, %v", l, err)
			}
			flush()
			if l, err := s.LoginLookup(ctx, "one", "warm@example.com"); err != nil || !l.Member {
				t.Fatalf("lookup after the flush: %+v, %v", l, err)
			}
			flush()
			if err := s.StartSession(ctx, storage.Session{Key: "s1", ActiveWorkspace: "one", ExpiresAt: time.Now().Add(time.Hour)},
				storage.Event{Type: "login.succeeded", Detail: map[string]string{"n": "flushed"}}); err != nil {
				t.Fatalf("start session after the flush: %v", err)
			}
			if _, err := s.GetSession(ctx, "s1"); err != nil {
				t.Fatalf("session: %v", err)
			}
			evs, err := s.ListEvents(ctx, "one", "", 100)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range evs {
				if e.Detail["n"] == "flushed" {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d events of the flushed start, want 1", n)
			}
		})
	}
}

// TestCreateJITUserInterrupted: whichever round trip of a JIT creation
// fails, before Redis ran it (a crash) or after (its reply lost), the
// caller gets ErrUnavailable, readers never see anything half-done, and
// re-sending the same sign-in completes it with one account, one
// membership, one session. On a single server the creation is one script;
// on a Cluster it is ordered steps (account record, email index, index
// read-back where needed, membership, session and events).
func TestCreateJITUserInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		open  func(*testing.T) (*redisstore.Store, *stepHook)
		steps int64
	}{
		{"single", signInStore, 1},
		{"cluster", clusterSignInStore, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, h := tc.open(t)
			for step := int64(1); step <= tc.steps; step++ {
				for _, lose := range []bool{false, true} {
					testCreateJITUserInterrupted(t, s, h, step, lose)
				}
			}
		})
	}
}

func testCreateJITUserInterrupted(t *testing.T, s *redisstore.Store, h *stepHook, step int64, lose bool) {
	t.Helper()
	ctx := t.Context()
	j := jitUser("p" + storage.NewID() + "@example.com")
	at := &h.failAt
	if lose {
		at = &h.loseAt
	}
	at.Store(h.n.Load() + step)
	_, err := s.CreateJITUser(ctx, "one", j)
	at.Store(0)
	if err == nil {
		return // the sign-in has fewer round trips than step
	}
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("step %d (lost reply %v): %v, want ErrUnavailable", step, lose, err)
	}
	// Readers see the account only complete, and the membership only with
	// its account.
	l, err := s.LoginLookup(ctx, "one", j.Account.Email)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		t.Fatalf("step %d (lost reply %v): lookup: %v", step, lose, err)
	case l.Account.ID != j.Account.ID || l.Member && l.User.ID != j.User.ID:
		t.Fatalf("step %d (lost reply %v): lookup = %+v", step, lose, l)
	}
	got, err := s.CreateJITUser(ctx, "one", j)
	if err != nil {
		t.Fatalf("step %d (lost reply %v): re-send: %v", step, lose, err)
	}
	if got.Account.ID != j.Account.ID || got.User.ID != j.User.ID {
		t.Fatalf("step %d (lost reply %v): re-send = %+v", step, lose, got)
	}
	l, err = s.LoginLookup(ctx, "one", j.Account.Email)
	if err != nil || !l.Member || l.User.ID != j.User.ID {
		t.Fatalf("step %d (lost reply %v): after the re-send: %+v, %v", step, lose, l, err)
	}
	if ms, err := s.AccountMemberships(ctx, j.Account.ID); err != nil || len(ms) != 1 {
		t.Fatalf("step %d (lost reply %v): memberships = %+v, %v", step, lose, ms, err)
	}
	if x, err := s.GetSession(ctx, j.Session.Key); err != nil || x.AccountID != j.Account.ID {
		t.Fatalf("step %d (lost reply %v): session = %+v, %v", step, lose, x, err)
	}
}

// TestCreateJITUserMissingWorkspaceWritesNothing: the workspace is checked
// before anything is written, so a first sign-in into a missing workspace
// leaves no account behind.
func TestCreateJITUserMissingWorkspaceWritesNothing(t *testing.T) {
	for _, open := range []func(*testing.T) (*redisstore.Store, *stepHook){signInStore, clusterSignInStore} {
		ctx := t.Context()
		s, _ := open(t)
		j := jitUser("gone@example.com")
		if _, err := s.CreateJITUser(ctx, "gone", j); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if _, err := s.GetAccountByEmail(ctx, "gone@example.com"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("account after a missing workspace: %v", err)
		}
		if _, err := s.GetSession(ctx, j.Session.Key); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("session after a missing workspace: %v", err)
		}
	}
}

// TestPublishAccountLostReply: the email index write that publishes a new
// account ran, but its reply was lost, or the write was delivered twice
// (go-redis re-sent it after a read timeout while Redis was stalled) and
// the second reply said the field was taken. The old code read its own
// entry as a lost race and deleted the record the index already pointed
// to, after which that email got 404 in every workspace. Now a lost reply
// is ErrUnavailable, a duplicate is recognised as the call's own effect,
// and the account stays intact either way.
func TestPublishAccountLostReply(t *testing.T) {
	for _, tc := range []struct {
		name    string
		arm     func(h *stepHook)
		wantErr error
	}{
		{"reply lost", func(h *stepHook) { h.loseCmd.Store("hsetnx") }, storage.ErrUnavailable},
		{"delivered twice", func(h *stepHook) { h.dupCmd.Store("hsetnx") }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s, h := signInStore(t)
			a := storage.Account{ID: "acct-lost", Email: "lost@example.com", CreatedAt: time.Now()}
			tc.arm(h)
			got, _, err := s.GetOrCreateAccount(ctx, a)
			if !errors.Is(err, tc.wantErr) || err == nil && got.ID != "acct-lost" {
				t.Fatalf("create = %+v, %v; want %v", got, err, tc.wantErr)
			}
			got, err = s.GetAccountByEmail(ctx, "lost@example.com")
			if err != nil || got.ID != "acct-lost" {
				t.Fatalf("account afterwards = %+v, %v", got, err)
			}
			again, created, err := s.GetOrCreateAccount(ctx, a)
			if err != nil || again.ID != "acct-lost" || created {
				t.Fatalf("next call = %+v, created %v, %v", again, created, err)
			}
			// A re-send that skips the cheap read (CreateAccount)
			// recognises its own entry too.
			if c, _, err := s.GetOrCreateAccount(ctx, a); err != nil || c.ID != "acct-lost" {
				t.Fatalf("re-sent create = %+v, %v", c, err)
			}
		})
	}
}

// TestWritesDeliveredTwice: every write script, delivered twice (as a
// client-level re-send after a timeout does), answers as if it had run
// once and changes the data once. The old scripts answered the second
// delivery of a user create with a false "id already in use" 409, bumped
// an updated user's version twice, refused a replayed sign-in's second
// consume as a replay and a join confirmation as a used link.
func TestWritesDeliveredTwice(t *testing.T) {
	ctx := t.Context()
	s, h := signInStore(t)
	twice := func(what string, f func() error) {
		t.Helper()
		h.dupCmd.Store("script")
		err := f()
		if h.dupCmd.Load() != "" {
			t.Fatalf("%s: no script ran", what)
		}
		if err != nil {
			t.Fatalf("%s delivered twice: %v", what, err)
		}
	}
	var u storage.User
	twice("create user", func() (err error) {
		u, err = s.CreateUser(ctx, "one", storage.User{UserName: "twice@example.com"})
		return err
	})
	if _, n, err := s.ListUsers(ctx, "one", 0, 10); err != nil || n != 2 {
		t.Fatalf("users = %d, %v; want the warm-up user and one more", n, err)
	}
	twice("update user", func() error {
		_, err := s.UpdateUser(ctx, "one", u.ID, 1, func(x *storage.User) error { x.Active = true; return nil })
		return err
	})
	if got, err := s.GetUser(ctx, "one", u.ID); err != nil || got.Version != 2 || !got.Active {
		t.Fatalf("after one update delivered twice: %+v, %v; want version 2", got, err)
	}
	var g storage.Group
	twice("create group", func() (err error) {
		g, err = s.CreateGroup(ctx, "one", storage.Group{DisplayName: "Twice"})
		return err
	})
	twice("change group", func() error {
		_, err := s.ChangeGroup(ctx, "one", g.ID, storage.GroupChange{IfVersion: 1, AddMembers: []string{u.ID}, Op: "add-1"})
		return err
	})
	if got, err := s.GetGroup(ctx, "one", g.ID); err != nil || got.Version != 2 || len(got.Members) != 1 {
		t.Fatalf("after one change delivered twice: %+v, %v; want version 2", got, err)
	}
	twice("JIT sign-in", func() error {
		_, err := s.CreateJITUser(ctx, "one", jitUser("jit-twice@example.com"))
		return err
	})
	if evs, err := s.ListEvents(ctx, "one", "", 100); err != nil || len(evs) != 4 {
		t.Fatalf("events = %d, %v; want the two sign-ins' four", len(evs), err)
	}
	var first bool
	twice("consume an assertion id", func() (err error) {
		first, err = s.ConsumeOnce(ctx, "one", "assertion-1", time.Now().Add(time.Minute))
		return err
	})
	if !first {
		t.Fatal("the first consume of an assertion id was refused")
	}
	if again, err := s.ConsumeOnce(ctx, "one", "assertion-1", time.Now().Add(time.Minute)); err != nil || again {
		t.Fatalf("a second consume = %v, %v; want refused", again, err)
	}
	a, _, err := s.GetOrCreateAccount(ctx, storage.Account{Email: "verify@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateVerification(ctx, storage.Verification{TokenHash: "h1", AccountID: a.ID, WorkspaceID: "one",
		ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	twice("consume a verification", func() error {
		_, err := s.ConsumeVerification(ctx, a.ID, "h1", "confirm-1")
		return err
	})
}
