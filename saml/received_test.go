package saml_test

import (
	"html"
	"net/http"
	"strconv"
	"strings"
	"testing"

	crewjam "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/server/servertest"
)

// TestSignInRecordsAttributesAndSpellings: a real signed sign-in records,
// with its decision event, every attribute the IdP sent (name and values
// as sent) and, for each attribute scimjit reads, which spelling matched:
// Entra's claim URIs (with a user. prefix typed into the claim name) and
// Okta's appuser. names. The Recent sign-ins page shows them in a details
// row of the attempt. A refused sign-in carries them too (what the admin
// needs when "the email didn't arrive").
func TestSignInRecordsAttributesAndSpellings(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, nil)

	const claims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
	entra := newSSOBrowser(env)
	page := entra.signIn(t, idp, "acme", assertionOpts{NameID: "eve@acme.example", Attrs: []crewjam.Attribute{
		attr(claims+"emailaddress", "eve@acme.example"),
		attr(claims+"user.workato_email", "Eve@Acme.example"),
		attr("http://schemas.microsoft.com/identity/claims/displayname", "Eve Entra"),
		attr(claims+"user.workato_role", "Admin"),
		attr(claims+"workato_role_prod", "Analyst"),
	}})
	if page.Status != http.StatusSeeOther {
		t.Fatalf("entra sign-in: %d\n%s", page.Status, page.Body)
	}
	okta := newSSOBrowser(env)
	page = okta.signIn(t, idp, "acme", assertionOpts{NameID: "00u1okta", NameIDFormat: string(crewjam.UnspecifiedNameIDFormat),
		Attrs: []crewjam.Attribute{
			attr("appuser.workato_email", "otto@acme.example"),
			attr("workato_full_name", "Otto Okta"),
			attr("appuser.workato_role_test", "Operator"),
		}})
	if page.Status != http.StatusSeeOther {
		t.Fatalf("okta sign-in: %d\n%s", page.Status, page.Body)
	}
	refused := newSSOBrowser(env)
	if page = refused.signIn(t, idp, "acme", assertionOpts{NameID: "00u2nomail", NameIDFormat: string(crewjam.UnspecifiedNameIDFormat),
		Attrs: []crewjam.Attribute{attr("appuser.workato_role", "Admin")}}); page.Status != http.StatusForbidden {
		t.Fatalf("sign-in without email: %d", page.Status)
	}

	type row struct{ name, values, reads, spelling string }
	want := map[string][]row{
		"eve@acme.example": {
			{claims + "emailaddress", "eve@acme.example", "", ""},
			{claims + "user.workato_email", "Eve@Acme.example", "workato_email", "claim URI, user. prefix"},
			{"http://schemas.microsoft.com/identity/claims/displayname", "Eve Entra", "", ""},
			{claims + "user.workato_role", "Admin", "workato_role", "claim URI, user. prefix"},
			{claims + "workato_role_prod", "Analyst", "workato_role_prod", "claim URI"},
		},
		"otto@acme.example": {
			{"appuser.workato_email", "otto@acme.example", "workato_email", "appuser. prefix"},
			{"workato_full_name", "Otto Okta", "workato_full_name", "plain"},
			{"appuser.workato_role_test", "Operator", "workato_role_test", "appuser. prefix"},
		},
		"": {{"appuser.workato_role", "Admin", "workato_role", "appuser. prefix"}},
	}
	decisions := append(events(t, env, "acme", "login.succeeded"), events(t, env, "acme", "login.refused")...)
	if len(decisions) != 3 {
		t.Fatalf("%d decision events, want 3", len(decisions))
	}
	for _, e := range decisions {
		got := saml.ReceivedAttributes(e.Detail)
		w := want[strings.ToLower(e.Detail["email"])]
		if len(got) != len(w) {
			t.Fatalf("%s %q: attributes %+v, want %d", e.Type, e.Detail["email"], got, len(w))
		}
		for i, a := range got {
			if r := (row{a.Name, strings.Join(a.Values, ","), a.Reads, a.Spelling}); r != w[i] {
				t.Errorf("%s %q attribute %d: %+v, want %+v", e.Type, e.Detail["email"], i, r, w[i])
			}
		}
		for k, v := range e.Detail {
			if strings.Contains(v, "Signature") || strings.Contains(v, "<") || strings.Contains(k, "format") {
				t.Errorf("%s detail %s = %q: signature, XML or NameID format recorded", e.Type, k, v)
			}
		}
	}
	if e := events(t, env, "acme", "login.refused")[0]; e.Detail["reason"] != "no_email" || e.Detail[saml.DetailNameID] != "00u2nomail" {
		t.Errorf("refused sign-in detail: %v", e.Detail)
	}

	// The page: Eve is an admin (workato_role Admin for DEV), signed in by
	// this very sign-in.
	page = entra.get(t, "/console/w/acme/sign-ins")
	if page.Status != http.StatusOK {
		t.Fatalf("sign-ins page: %d\n%s", page.Status, page.Body)
	}
	body := html.UnescapeString(page.Body)
	if n := strings.Count(body, `<tr class="attempt-details">`); n != 3 {
		t.Errorf("%d details rows, want one per attempt (3)", n)
	}
	for _, rows := range want {
		for _, r := range rows {
			for _, s := range []string{`<td class="mono">` + r.name + `</td>`, r.values} {
				if !strings.Contains(body, s) {
					t.Errorf("the page does not show %q", s)
				}
			}
			if r.reads != "" && !strings.Contains(body, r.reads+`</span>: read from <span class="mono">`+r.name+`</span> (`+r.spelling+`)`) {
				t.Errorf("the page does not say %s was read from %s (%s)", r.reads, r.name, r.spelling)
			}
		}
	}
	if !strings.Contains(body, `workato_full_name</span>: <span class="muted">not sent`) {
		t.Error("the page does not say workato_full_name was not sent by Entra")
	}
}

// TestSignInRecordIsBounded: an IdP that sends hundreds of attributes with
// huge values cannot blow up the sign-in's event: the record keeps a
// bounded number of attributes and values, each cut short, and counts
// what it left out.
func TestSignInRecordIsBounded(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, nil)
	attrs := []crewjam.Attribute{attr("workato_email", "huge@acme.example")}
	big := strings.Repeat("é", 600)
	for i := range 100 {
		a := attr("a"+strconv.Itoa(i)+strings.Repeat("n", 300), big)
		for range 5 {
			a.Values = append(a.Values, crewjam.AttributeValue{Type: "xs:string", Value: big})
		}
		attrs = append(attrs, a)
	}
	if page := newSSOBrowser(env).signIn(t, idp, "acme", assertionOpts{NameID: "huge@acme.example", Attrs: attrs}); page.Status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", page.Status)
	}
	ev := events(t, env, "acme", "login.succeeded")
	if len(ev) != 1 {
		t.Fatalf("%d sign-ins recorded", len(ev))
	}
	size := 0
	for k, v := range ev[0].Detail {
		size += len(k) + len(v)
	}
	got := saml.ReceivedAttributes(ev[0].Detail)
	omitted, _ := strconv.Atoi(ev[0].Detail[saml.DetailAttributesOmitted])
	if size > 16<<10 || len(got) == 0 || len(got) > 40 || omitted < 60 {
		t.Fatalf("detail of %d bytes, %d attributes recorded, %d omitted", size, len(got), omitted)
	}
	if got[0].Reads != "workato_email" {
		t.Errorf("first attribute %+v", got[0])
	}
	for _, a := range got {
		for _, v := range append([]string{a.Name}, a.Values...) {
			if len(v) > 210 || !strings.HasSuffix(v, "…") && len(v) > 200 {
				t.Fatalf("a name or value of %d bytes recorded", len(v))
			}
		}
	}
}
