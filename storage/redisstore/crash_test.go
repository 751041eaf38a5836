package redisstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

// These tests put Redis into the state a crash between the steps of a
// cross-slot operation leaves behind (docs/storage.md, "Crash ordering")
// and check that readers see nothing half-done and a retry completes the
// operation.

func TestCrashAfterMembershipBackPointer(t *testing.T) {
	ctx := context.Background()
	s := redistest.NewRedisStore(t)
	c := s.Client()
	for _, ws := range []string{"one", "two"} {
		if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: ws}); err != nil {
			t.Fatal(err)
		}
	}
	a, _, err := s.GetOrCreateAccount(ctx, storage.Account{Email: "crash@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, "one", storage.User{AccountID: a.ID, UserName: "crash@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	// CreateUser in "two" crashed after step 1 (back-pointer) and before
	// step 2 (the membership script).
	if err := c.HSet(ctx, "sj:{acct:"+a.ID+"}:a", "w:two", "1").Err(); err != nil {
		t.Fatal(err)
	}
	ms, err := s.AccountMemberships(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0] != (storage.MembershipRef{WorkspaceID: "one", UserID: u.ID}) {
		t.Fatalf("memberships with a dangling back-pointer = %+v, want only workspace one", ms)
	}
	// The retry completes it.
	u2, err := s.CreateUser(ctx, "two", storage.User{AccountID: a.ID, UserName: "crash@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	ms, err = s.AccountMemberships(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[1] != (storage.MembershipRef{WorkspaceID: "two", UserID: u2.ID}) {
		t.Fatalf("memberships after the retry = %+v", ms)
	}
	// DeleteUser crashed after its script and before removing the
	// back-pointer (put back below): the membership is gone for readers
	// all the same.
	if err := s.DeleteUser(ctx, "one", u.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, "sj:{acct:"+a.ID+"}:a", "w:one", "1").Err(); err != nil {
		t.Fatal(err)
	}
	ms, err = s.AccountMemberships(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].WorkspaceID != "two" {
		t.Fatalf("memberships with a stale back-pointer = %+v, want only workspace two", ms)
	}
}

func TestCrashAfterAccountRecordBeforeEmailIndex(t *testing.T) {
	ctx := context.Background()
	s := redistest.NewRedisStore(t)
	c := s.Client()
	// Step 1 of CreateAccount happened (record under a fresh id), step 2
	// (email index) did not.
	if err := c.HSet(ctx, "sj:{acct:orphan}:a", "v", "1", "e", "late@example.com", "c", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccountByEmail(ctx, "late@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an unpublished account is visible by email: %v", err)
	}
	a, created, err := s.GetOrCreateAccount(ctx, storage.Account{Email: "late@example.com"})
	if err != nil || !created || a.ID == "orphan" {
		t.Fatalf("retry = %+v, created %v, %v; want a new published account", a, created, err)
	}
	got, err := s.GetAccountByEmail(ctx, "LATE@example.com")
	if err != nil || got.ID != a.ID {
		t.Fatalf("by email after the retry = %+v, %v", got, err)
	}
}

func TestCrashAfterWorkspaceRecordBeforeRegistry(t *testing.T) {
	ctx := context.Background()
	s := redistest.NewRedisStore(t)
	c := s.Client()
	if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "half"}); err != nil {
		t.Fatal(err)
	}
	// As if the registry ZADD had not happened.
	if err := c.ZRem(ctx, "sj:{registry}:workspaces", "half").Err(); err != nil {
		t.Fatal(err)
	}
	// The retry answers "already exists" and repairs the registry.
	_, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "half"})
	var ce *storage.ConflictError
	if !errors.As(err, &ce) || ce.Field != "workspace" {
		t.Fatalf("retry = %v, want ConflictError{workspace}", err)
	}
	list, err := s.ListWorkspaces(ctx)
	if err != nil || len(list) != 1 || list[0].ID != "half" {
		t.Fatalf("list after the retry = %+v, %v", list, err)
	}
	// DeleteWorkspace crashed before removing the registry entry: the
	// workspace is not listed.
	if err := s.DeleteWorkspace(ctx, "half"); err != nil {
		t.Fatal(err)
	}
	if err := c.ZAdd(ctx, "sj:{registry}:workspaces", redisZ("half")).Err(); err != nil {
		t.Fatal(err)
	}
	list, err = s.ListWorkspaces(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("list with a stale registry entry = %+v, %v", list, err)
	}
}

func redisZ(member string) redis.Z { return redis.Z{Member: member} }
