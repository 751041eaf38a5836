package scimhandlers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

// TestJITMembershipIsAdopted: a JIT-created membership (userName = email,
// no externalId) is visible to the IdP's lookup and a POST adopts it
// instead of looping on 409 (R13, idp-clients.md X1).
func TestJITMembershipIsAdopted(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("finance", nil)
	ctx := context.Background()
	acct, _, err := e.store.GetOrCreateAccount(ctx, storage.Account{Email: "Bob@Acme.com", Source: storage.SourceJIT, OriginWorkspace: "finance"})
	if err != nil {
		t.Fatal(err)
	}
	jit, err := e.store.CreateUser(ctx, "finance", storage.User{
		WorkspaceID: "finance", AccountID: acct.ID, UserName: "Bob@Acme.com", Emails: []string{"bob@acme.com"},
		Active: true, Verified: true, Source: storage.SourceJIT,
		Roles: storage.Roles{Dev: "Analyst", Test: "Analyst", Prod: "Analyst"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := c.do("GET", "/Users?filter="+q(`userName eq "bob@acme.com"`), "").expect(t, 200)
	eq(t, "found by userName", num(r.body, "totalResults"), 1)
	eq(t, "synthesised email", str(r.body, "Resources.0.emails.0.value"), "bob@acme.com")
	r = c.do("GET", "/Users?filter="+q(`emails.value eq "BOB@acme.com"`), "").expect(t, 200)
	eq(t, "found by email", num(r.body, "totalResults"), 1)

	r = c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"Bob@Acme.com","externalId":"okta-bob","name":{"givenName":"Bob"},
		"emails":[{"value":"Bob@Acme.com","primary":true,"type":"work"}],"active":true}`).expect(t, 201)
	eq(t, "adopted same id", str(r.body, "id"), jit.ID)
	eq(t, "externalId set", str(r.body, "externalId"), "okta-bob")
	eq(t, "JIT roles kept", role(r.body, roleDev), "Analyst")
	u, _ := e.store.GetUser(ctx, "finance", jit.ID)
	eq(t, "source now scim", u.Source, storage.SourceSCIM)
	eq(t, "still verified", u.Verified, true)

	// Once claimed, another POST for the same userName is a conflict.
	c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"bob@acme.com","externalId":"okta-bob-2"}`).expectError(t, 409, "uniqueness")

	// Adoption also works when the IdP's userName differs but the email
	// belongs to the JIT membership's account.
	acct2, _, _ := e.store.GetOrCreateAccount(ctx, storage.Account{Email: "carol@acme.com", Source: storage.SourceJIT, OriginWorkspace: "finance"})
	jit2, err := e.store.CreateUser(ctx, "finance", storage.User{WorkspaceID: "finance", AccountID: acct2.ID, UserName: "carol@acme.com",
		Emails: []string{"carol@acme.com"}, Active: true, Verified: true, Source: storage.SourceJIT})
	if err != nil {
		t.Fatal(err)
	}
	r = c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"carol","emails":[{"value":"carol@acme.com"}]}`).expect(t, 201)
	eq(t, "adopted by account", str(r.body, "id"), jit2.ID)
	eq(t, "userName updated", str(r.body, "userName"), "carol")
}

// TestAccountLinking: R9 — link by primary email, else first, else
// userName; a new account is verified, an account from elsewhere is not.
func TestAccountLinking(t *testing.T) {
	e := newTestEnv(t)
	a := e.workspace("ws-a", nil)
	b := e.workspace("ws-b", nil)
	ctx := context.Background()

	r := a.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"dave","emails":[{"value":"d2@acme.com"},{"value":"Dave@Acme.com","primary":true}]}`).expect(t, 201)
	ua, _ := e.store.GetUser(ctx, "ws-a", str(r.body, "id"))
	acct, _ := e.store.GetAccount(ctx, ua.AccountID)
	eq(t, "linked by primary", strings.ToLower(acct.Email), "dave@acme.com")
	eq(t, "new account verified", ua.Verified, true)

	// Same person provisioned into B: existing account, unverified membership.
	r = b.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"dave@acme.com"}`).expect(t, 201)
	ub, _ := e.store.GetUser(ctx, "ws-b", str(r.body, "id"))
	eq(t, "same account", ub.AccountID, ua.AccountID)
	eq(t, "membership elsewhere unverified", ub.Verified, false)
	// X3: B's call did not change the account.
	acct2, _ := e.store.GetAccount(ctx, ua.AccountID)
	eq(t, "account origin unchanged", acct2.OriginWorkspace, "ws-a")

	// First email when none is primary.
	r = a.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"erin","emails":[{"value":"erin@acme.com"},{"value":"e2@acme.com"}]}`).expect(t, 201)
	ue, _ := e.store.GetUser(ctx, "ws-a", str(r.body, "id"))
	acct3, _ := e.store.GetAccount(ctx, ue.AccountID)
	eq(t, "linked by first", acct3.Email, "erin@acme.com")

	// No email at all → 400 invalidValue saying so.
	r = a.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"no-email"}`).expectError(t, 400, "invalidValue")
	if !strings.Contains(str(r.body, "detail"), "no email") {
		t.Errorf("detail %q", str(r.body, "detail"))
	}
}

// TestRoles: the Workato role extension follows R4.
func TestRoles(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("hr", func(w *storage.Workspace) {
		w.Settings.CustomRoles = []string{"Auditor"}
		w.Settings.JIT.DefaultRole = "NoAccess"
	})
	r := c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole"],
		"userName":"r1@acme.com","urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"Admin","workato_role_test":"Auditor"}}`).expect(t, 201)
	eq(t, "dev", role(r.body, roleDev), "Admin")
	eq(t, "test (custom)", role(r.body, roleTest), "Auditor")
	eq(t, "prod (workspace default)", role(r.body, roleProd), "NoAccess")
	id := str(r.body, "id")
	r = c.do("GET", "/Users?filter="+q(`urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role eq "Admin"`), "").expect(t, 200)
	eq(t, "filter by role", num(r.body, "totalResults"), 1)

	r = c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":"r2@acme.com","urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"auditor"}}`).expectError(t, 400, "invalidValue")
	if !strings.Contains(str(r.body, "detail"), `"auditor"`) {
		t.Errorf("detail %q does not name the role", str(r.body, "detail"))
	}
	// Removing a role falls back to the default.
	r = c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"remove","path":"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role"}]}`).expect(t, 200)
	eq(t, "removed role → default", role(r.body, roleDev), "NoAccess")
	eq(t, "other role kept", role(r.body, roleTest), "Auditor")
}

// TestEvents: every write appends an event.
func TestEvents(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("ev", nil)
	id := c.createUser(t, "ev@acme.com")
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","value":{"active":false}}]}`).expect(t, 200)
	c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"ev@acme.com"}`).expect(t, 201)
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","path":"displayName","value":"E"}]}`).expect(t, 200)
	r := c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G"}`).expect(t, 201)
	c.do("PATCH", "/Groups/"+str(r.body, "id"), patchPrefix+`[{"op":"add","path":"members","value":[{"value":"`+id+`"}]}]}`).expect(t, 200)
	c.do("DELETE", "/Groups/"+str(r.body, "id"), "").expect(t, 204)
	c.do("DELETE", "/Users/"+id, "").expect(t, 204)
	evs, err := e.store.ListEvents(context.Background(), "ev", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	eq(t, "events", strings.Join(types, ","), "scim.user.created,scim.user.deactivated,scim.user.reactivated,scim.user.updated,"+
		"scim.group.created,scim.group.member_added,scim.group.deleted,scim.user.deleted")
	c.do("GET", "/Users/"+id, "").expectError(t, 404, "")
}

// TestConcurrentReactivation: simultaneous re-assignment POSTs of one
// inactive user re-activate it once. POSTs that differ: one wins, the
// others see an active user (409). The same POST sent several times is one
// request (a client re-sending after a lost answer): every copy gets the
// user (201), which is re-activated once, with one event.
func TestConcurrentReactivation(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.workspace("react", nil)
	for _, identical := range []bool{false, true} {
		userName := fmt.Sprintf("re-%v@acme.com", identical)
		id := c.createUser(t, userName)
		c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","value":{"active":false}}]}`).expect(t, 200)
		const n = 10
		res := make([]resp, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				title := ""
				if !identical {
					title = fmt.Sprintf(`,"title":"T%d"`, i)
				}
				res[i] = c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"`+userName+`","active":"True"`+title+`}`)
			}()
		}
		close(start)
		wg.Wait()
		created := 0
		for _, r := range res {
			switch r.status {
			case 201:
				created++
				eq(t, "same id", str(r.body, "id"), id)
			case 409:
				eq(t, "scimType", str(r.body, "scimType"), "uniqueness")
			default:
				t.Errorf("unexpected %d %s", r.status, r.raw)
			}
		}
		want := 1
		if identical {
			want = n
		}
		eq(t, fmt.Sprintf("201s (identical %v)", identical), created, want)
		r := c.do("GET", "/Users/"+id, "").expect(t, 200)
		eq(t, "active (string \"True\" in POST)", get(r.body, "active"), true)
		evs, err := e.store.ListEvents(context.Background(), c.ws, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		n2 := 0
		for _, ev := range evs {
			if ev.Type == "scim.user.reactivated" && ev.UserID == id {
				n2++
			}
		}
		eq(t, "re-activation events", n2, 1)
	}
}
