package saml_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	crewjam "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// An existing account that joins a workspace with group rules gets the
// roles of the sign-in that started the join, and the roles explain call
// still names the rule and group behind each one after the link is
// confirmed (the join carries the decision's reasons to join.verified).
func TestJoinKeepsTheGroupRuleBehindItsRoles(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "fin", idp, nil)
	addWorkspace(t, env, "hr", idp, withGroupRules(false, storage.RoleSyncOnCreate, testRules...))
	const email = "joe@acme.example"

	signInOK(t, env, idp, "fin", email)
	b := newSSOBrowser(env)
	pg := b.signIn(t, idp, "hr", assertionOpts{NameID: email,
		Attrs: []crewjam.Attribute{attr("workato_role_test", "Operator"), groupsAttr("groups", "Engineering")}})
	if pg.Status != http.StatusOK || !strings.Contains(pg.Body, "Check your email") {
		t.Fatalf("sign-in to hr: %d %s", pg.Status, pg.Body)
	}
	mails, err := env.Store.ListMail(t.Context(), 1)
	if err != nil || len(mails) != 1 {
		t.Fatalf("outbox: %v %v", mails, err)
	}
	link := regexp.MustCompile(`https?://\S+/join/\S+`).FindString(mails[0].Text)
	u, err := url.Parse(link)
	if err != nil || link == "" {
		t.Fatalf("no join link in %q", mails[0].Text)
	}
	cp := b.get(t, u.Path)
	if cp.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u.Path, cp.Status, cp.Body)
	}
	form := page{status: cp.Status, body: cp.Body}.form(t, "/join/confirm")
	if done := b.postForm(t, "/join/confirm", form); done.Status >= 400 {
		t.Fatalf("confirm: %d %s", done.Status, done.Body)
	}

	_, m := membership(t, env, "hr", email)
	mustHaveRoles(t, "joined", m.Roles, storage.Roles{Dev: "Admin", Test: "Operator", Prod: "Operator"})
	x := explain(t, env, "hr", m.ID)
	dev, test, prod := x.Environments[0], x.Environments[1], x.Environments[2]
	if dev.Source != "rule" || dev.Rule != 1 || dev.Group != "Engineering" || dev.EventType != "join.verified" {
		t.Errorf("dev = %+v, want rule 1 (Engineering) through join.verified", dev)
	}
	if test.Source != "attribute" || prod.Source != "default" || prod.EventType != "join.verified" {
		t.Errorf("test = %+v, prod = %+v", test, prod)
	}
}
