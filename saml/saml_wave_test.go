package saml_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// jitCounter counts how sign-ins create: prepared (the creation sent
// with the consume) or separately.
type jitCounter struct {
	storage.Store
	prepared, separate atomic.Int64
}

func (s *jitCounter) ConsumeOnceAndLoginLookupOrCreate(ctx context.Context, ws, key string, exp time.Time, email string, c *storage.JITCreate) (storage.ConsumeLookup, error) {
	if c != nil {
		s.prepared.Add(1)
	}
	return s.Store.ConsumeOnceAndLoginLookupOrCreate(ctx, ws, key, exp, email, c)
}

func (s *jitCounter) CreateAccountAndUserWithSession(ctx context.Context, ws string, a storage.Account, u storage.User, sess storage.Session, evs []storage.Event) (storage.JITSignIn, error) {
	s.separate.Add(1)
	return s.Store.CreateAccountAndUserWithSession(ctx, ws, a, u, sess, evs)
}

// TestJITWavePreparesCreations: sign-ins prepare their creation only
// during a wave of first sign-ins (eleven in a row start it), and the
// outcome is the same either way: a new person is created with the roles
// and events of R1–R7, a known person is signed in as a member (the
// prepared creation is dropped: no second account, no creation event), an
// unknown role is decided as always (no creation prepared, the decision
// recorded), and enough known sign-ins end the wave.
func TestJITWavePreparesCreations(t *testing.T) {
	var st *jitCounter
	env := servertest.New(t, func(c *server.Config) {
		st = &jitCounter{Store: c.Store}
		c.Store = st
	})
	idp := newSSOIdP(t, "https://idp-wave.test")
	addWorkspace(t, env, "wave", idp, nil)
	email := func(i int) string { return fmt.Sprintf("person%02d@wave.example", i) }
	signIn := func(t *testing.T, e string, roles ...crewjam.Attribute) ssoPage {
		t.Helper()
		return newSSOBrowser(env).signIn(t, idp, "wave", assertionOpts{NameID: e, Attrs: roles})
	}
	counts := func(t *testing.T, prepared, separate int64) {
		t.Helper()
		if p, s := st.prepared.Load(), st.separate.Load(); p != prepared || s != separate {
			t.Fatalf("creations prepared %d, separate %d; want %d, %d", p, s, prepared, separate)
		}
	}
	created := func(t *testing.T, e string, want storage.Roles) {
		t.Helper()
		acct, u := membership(t, env, "wave", e)
		if acct.Source != storage.SourceJIT || u.Roles != want || !u.Verified || !u.Active {
			t.Fatalf("%s: %+v, %+v", e, acct, u)
		}
		n := 0
		for _, ev := range events(t, env, "wave", "jit.user.created") {
			if ev.Detail["email"] == e {
				n++
				if ev.AccountID != acct.ID || ev.UserID != u.ID {
					t.Fatalf("creation event of %s = %+v", e, ev)
				}
			}
		}
		if n != 1 {
			t.Fatalf("%s: %d creation events, want 1", e, n)
		}
	}
	def := storage.Roles{Dev: storage.RoleOperator, Test: storage.RoleOperator, Prod: storage.RoleOperator}

	for i := 0; i < 11; i++ {
		if pg := signIn(t, email(i)); pg.Status != http.StatusSeeOther {
			t.Fatalf("first sign-in %d: %d %s", i, pg.Status, pg.Body)
		}
	}
	counts(t, 0, 11)
	created(t, email(0), def)

	// In the wave: created with the consume, one call.
	if pg := signIn(t, email(11), attr("workato_role", "Admin"), attr("workato_role_prod", "NoAccess")); pg.Status != http.StatusSeeOther {
		t.Fatalf("sign-in in the wave: %d %s", pg.Status, pg.Body)
	}
	counts(t, 1, 11)
	created(t, email(11), storage.Roles{Dev: storage.RoleAdmin, Test: storage.RoleOperator, Prod: storage.RoleNoAccess})

	// A known person in the wave: signed in as a member, nothing created.
	logins := len(events(t, env, "wave", "login.succeeded"))
	if pg := signIn(t, email(3), attr("workato_role", "Admin")); pg.Status != http.StatusSeeOther {
		t.Fatalf("member in the wave: %d %s", pg.Status, pg.Body)
	}
	counts(t, 2, 11)
	created(t, email(3), def) // one account, one creation event, roles of the creation (R6)
	if n := len(events(t, env, "wave", "login.succeeded")); n != logins+1 {
		t.Fatalf("login events %d, want %d", n, logins+1)
	}

	// An unknown role in the wave: no creation prepared; refused and
	// recorded as always under the reject policy.
	if pg := signIn(t, "odd@wave.example", attr("workato_role", "admin")); pg.Status != http.StatusForbidden {
		t.Fatalf("unknown role: %d %s", pg.Status, pg.Body)
	}
	counts(t, 2, 11)
	if _, err := env.Store.GetAccountByEmail(t.Context(), "odd@wave.example"); err == nil {
		t.Fatal("account created for an unknown role")
	}
	if ev := events(t, env, "wave", "role.unknown"); len(ev) != 1 || ev[0].Detail["role"] != "admin" {
		t.Fatalf("role.unknown events = %+v", ev)
	}

	// Known people end the wave: new people are created separately again.
	for i := 0; i < 12; i++ {
		if pg := signIn(t, email(i%11)); pg.Status != http.StatusSeeOther {
			t.Fatalf("member sign-in %d: %d %s", i, pg.Status, pg.Body)
		}
	}
	prepared := st.prepared.Load()
	if pg := signIn(t, email(20)); pg.Status != http.StatusSeeOther {
		t.Fatalf("after the wave: %d %s", pg.Status, pg.Body)
	}
	counts(t, prepared, 12)
	created(t, email(20), def)
}
