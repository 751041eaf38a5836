package conformance

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// activityCases are the cases of the provisioning summary.
var activityCases = []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}{
	{"SCIMActivity", testSCIMActivity},
}

// testSCIMActivity: the summary counts the SCIM changes applied (the
// scim.* events every write appends, whichever call appends them) and the
// errors recorded, keeps the last MaxSCIMErrors errors newest first with
// every field, counts concurrent records exactly, and shows another
// workspace nothing.
func testSCIMActivity(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	now := time.Now()
	empty, err := s.SCIMActivity(ctx, wsA, now)
	must(t, err, "empty summary")
	if len(empty.Counts) != 0 || len(empty.Errors) != 0 {
		t.Fatalf("a new workspace's summary: %+v", empty)
	}

	// Changes are counted from their events: a user create appends its
	// event in the same step, as AppendEvents does; other events are not
	// counted.
	acct, _, err := s.GetOrCreateAccount(ctx, storage.Account{Email: "act@example.com"})
	must(t, err, "account")
	_, err = s.CreateUser(ctx, wsA, storage.User{AccountID: acct.ID, UserName: "act@example.com"},
		storage.Event{Type: "scim.user.created", Actor: "scim"})
	must(t, err, "create user")
	for _, typ := range []string{"scim.user.updated", "scim.user.updated", "login.succeeded", "admin.workspace.updated"} {
		_, err := s.AppendEvents(ctx, wsA, storage.Event{Type: typ, Actor: "test"})
		must(t, err, "append "+typ)
	}
	_, err = s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "act"}, storage.Event{Type: "scim.group.created", Actor: "scim"})
	must(t, err, "create group")

	// Errors: more than the list keeps, and concurrently.
	base := now.Add(-time.Minute).Truncate(time.Microsecond)
	var wg sync.WaitGroup
	for i := range storage.MaxSCIMErrors + 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.RecordSCIMError(ctx, wsA, storage.SCIMRequestError{Time: base, Method: "POST", Route: "/Users",
				Status: 409, SCIMType: "uniqueness", Detail: fmt.Sprintf("concurrent %d", i)}); err != nil {
				t.Errorf("record error %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	last := storage.SCIMRequestError{Time: base.Add(time.Second), Method: "PATCH", Route: "/Groups/:id", Status: 400,
		SCIMType: "invalidPath", Detail: "path members[value eq] is not valid"}
	must(t, s.RecordSCIMError(ctx, wsA, last), "record error")
	wantErr(t, s.RecordSCIMError(ctx, "conf-missing", last), storage.ErrNotFound, "record error in an unknown workspace")

	got, err := s.SCIMActivity(ctx, wsA, now)
	must(t, err, "summary")
	want := map[string]int64{"scim.user.created": 1, "scim.user.updated": 2, "scim.group.created": 1,
		"error.409": int64(storage.MaxSCIMErrors + 5), "error.400": 1}
	if fmt.Sprint(got.Counts) != fmt.Sprint(want) {
		t.Errorf("counts = %v, want %v", got.Counts, want)
	}
	if len(got.Errors) != storage.MaxSCIMErrors {
		t.Fatalf("%d errors kept, want %d", len(got.Errors), storage.MaxSCIMErrors)
	}
	if e := got.Errors[0]; e.Method != last.Method || e.Route != last.Route || e.Status != last.Status ||
		e.SCIMType != last.SCIMType || e.Detail != last.Detail || !e.Time.Equal(last.Time) {
		t.Errorf("newest error = %+v, want %+v", e, last)
	}
	// Counts older than the window are not in it.
	later, err := s.SCIMActivity(ctx, wsA, now.Add(storage.SCIMActivityWindow+time.Hour))
	must(t, err, "summary a day later")
	if len(later.Counts) != 0 || len(later.Errors) != storage.MaxSCIMErrors {
		t.Errorf("a day later: counts %v, %d errors (the last errors stay)", later.Counts, len(later.Errors))
	}

	other, err := s.SCIMActivity(ctx, wsB, now)
	must(t, err, "other workspace's summary")
	if len(other.Counts) != 0 || len(other.Errors) != 0 {
		t.Errorf("workspace %s sees %+v", wsB, other)
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}
