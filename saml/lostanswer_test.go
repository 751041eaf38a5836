package saml_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

// lossyStore passes every call on to the store, but can lose the answer
// of the next call of one method: the call runs, and the caller gets
// ErrUnavailable, as when the connection to Redis breaks after the
// request was written or the reply times out.
type lossyStore struct {
	storage.Store
	lose atomic.Value // the method name, or ""
}

func newLossyStore(s storage.Store) *lossyStore {
	l := &lossyStore{Store: s}
	l.lose.Store("")
	return l
}

func (l *lossyStore) lost(method string, err error) error {
	if err == nil && l.lose.CompareAndSwap(method, "") {
		return fmt.Errorf("%w: reply lost (test)", storage.ErrUnavailable)
	}
	return err
}

func (l *lossyStore) CreateJITUser(ctx context.Context, ws string, j storage.JITUser) (storage.JITUser, error) {
	r, err := l.Store.CreateJITUser(ctx, ws, j)
	return r, l.lost("CreateJITUser", err)
}

func (l *lossyStore) CreateUser(ctx context.Context, ws string, u storage.User, events ...storage.Event) (storage.User, error) {
	r, err := l.Store.CreateUser(ctx, ws, u, events...)
	return r, l.lost("CreateUser", err)
}

func (l *lossyStore) ConsumeVerification(ctx context.Context, accountID, tokenHash, op string) (storage.Verification, error) {
	r, err := l.Store.ConsumeVerification(ctx, accountID, tokenHash, op)
	return r, l.lost("ConsumeVerification", err)
}

func (l *lossyStore) StartSession(ctx context.Context, x storage.Session, events ...storage.Event) error {
	return l.lost("StartSession", l.Store.StartSession(ctx, x, events...))
}

// wantTryAgain checks the page of an answer the store lost: 503 with
// Retry-After, asking to try again.
func wantTryAgain(t *testing.T, pg page) {
	t.Helper()
	if pg.status != http.StatusServiceUnavailable || !strings.Contains(pg.body, "Try again in a moment") {
		t.Fatalf("lost answer: %d, want 503 and the try-again page:\n%s", pg.status, pg.body)
	}
}

// TestJITSignInAnswerLost: the store created the account, membership and
// session of a first sign-in but its answer was lost. The person sees
// "try again" (503), and signing in again works: one account, one
// membership, signed in.
func TestJITSignInAnswerLost(t *testing.T) {
	var ls *lossyStore
	je := newJoinEnv(t, joinOptions{wrapStore: func(s storage.Store) storage.Store { ls = newLossyStore(s); return ls }})
	je.workspace(t, "fin", nil)
	b := je.browser(t)
	ls.lose.Store("CreateJITUser")
	wantTryAgain(t, b.signIn("fin", jane))
	if pg := b.signIn("fin", jane); pg.status != http.StatusOK || !strings.Contains(pg.body, "Signed in as Jane Doe") {
		t.Fatalf("sign-in again: %d\n%s", pg.status, pg.body)
	}
	if m := b.me(); m.ActiveWorkspace != "fin" || len(m.Memberships) != 1 {
		t.Fatalf("me = %+v", m)
	}
	if n := memberships(t, je, "fin"); n != 1 {
		t.Fatalf("%d memberships, want 1", n)
	}
	if n := countEvents(je.events(t, "fin"), "jit.user.created"); n != 1 {
		t.Fatalf("%d jit.user.created events, want 1", n)
	}
}

// TestJoinConfirmAnswerLost: a join confirmation whose answer was lost at
// any of its writes (the consume of the link, the membership, the
// session) is answered "try again" (503); submitting the same page again
// finishes the join and signs in, with one membership and one
// join.verified event. Without the attempt id, the second submission found
// the link used and the person was stuck.
func TestJoinConfirmAnswerLost(t *testing.T) {
	for _, method := range []string{"ConsumeVerification", "CreateUser", "StartSession"} {
		t.Run(method, func(t *testing.T) {
			var ls *lossyStore
			je, b, link := joinSetup(t, joinOptions{wrapStore: func(s storage.Store) storage.Store {
				ls = newLossyStore(s)
				return ls
			}})
			form := b.get(link).form(t, "/join/confirm")
			ls.lose.Store(method)
			wantTryAgain(t, b.post("/join/confirm", form))
			pg := b.post("/join/confirm", form)
			if pg.status != http.StatusOK || b.me().ActiveWorkspace != "hr" {
				t.Fatalf("re-sent confirm: %d\n%s", pg.status, pg.body)
			}
			if n := countEvents(je.events(t, "hr"), "join.verified"); n != 1 {
				t.Errorf("%d join.verified events, want 1", n)
			}
			if n := memberships(t, je, "hr"); n != 1 {
				t.Errorf("%d memberships in hr, want 1", n)
			}
			// Now it is used: the same page again, from the browser the
			// join signed in, is refused.
			form.Set("csrf_token", b.get("/").form(t, "/logout").Get("csrf_token"))
			if pg := b.post("/join/confirm", form); pg.status != http.StatusGone {
				t.Fatalf("confirm after the join: %d, want 410", pg.status)
			}
		})
	}
}

// TestMemberSignInAnswerLost: a member's sign-in whose session and events
// were written but whose answer was lost is answered "try again" (503);
// signing in again works.
func TestMemberSignInAnswerLost(t *testing.T) {
	var ls *lossyStore
	je := newJoinEnv(t, joinOptions{wrapStore: func(s storage.Store) storage.Store { ls = newLossyStore(s); return ls }})
	je.workspace(t, "fin", nil)
	b := je.browser(t)
	if pg := b.signIn("fin", jane); pg.status != http.StatusOK {
		t.Fatalf("first sign-in: %d\n%s", pg.status, pg.body)
	}
	ls.lose.Store("StartSession")
	wantTryAgain(t, b.signIn("fin", jane))
	if pg := b.signIn("fin", jane); pg.status != http.StatusOK || !strings.Contains(pg.body, "Signed in as Jane Doe") {
		t.Fatalf("sign-in again: %d\n%s", pg.status, pg.body)
	}
	if m := b.me(); m.ActiveWorkspace != "fin" || len(m.Memberships) != 1 {
		t.Fatalf("me = %+v", m)
	}
}
