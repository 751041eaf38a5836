package main

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/saml/mail/mailtest"
)

var (
	csrfRe   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	actionRe = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	inputRe  = regexp.MustCompile(`<input type="hidden" name="(SAMLResponse|RelayState)" value="([^"]*)"`)
)

func postForm(t *testing.T, c *http.Client, target string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(target, form)
	if err != nil {
		t.Fatalf("POST %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// demoSignIn signs browser in to ws through the demo IdP as email and
// returns the page the ACS ends on.
func demoSignIn(t *testing.T, browser *http.Client, base, ws, email string) string {
	t.Helper()
	resp, err := browser.Get(base + "/demo/idp")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRe.FindStringSubmatch(string(page))
	if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(string(page), `<option value="`+ws+`">`) {
		t.Fatalf("demo IdP form: %d\n%s", resp.StatusCode, page)
	}
	// The form redirects through /saml/{ws}/login to the demo IdP's SSO
	// endpoint, which answers with the auto-post form for the ACS.
	resp, body := postForm(t, browser, base+"/demo/idp", url.Values{
		"csrf_token": {html.UnescapeString(m[1])}, "workspace": {ws}, "email": {email},
		"workato_role": {"Analyst"}, "spelling": {"okta"},
	})
	action := actionRe.FindStringSubmatch(body)
	inputs := inputRe.FindAllStringSubmatch(body, -1)
	if resp.StatusCode != http.StatusOK || action == nil || len(inputs) != 2 {
		t.Fatalf("demo IdP answer: %d\n%s", resp.StatusCode, body)
	}
	if html.UnescapeString(action[1]) != base+"/saml/"+ws+"/acs" {
		t.Fatalf("posts to %s", action[1])
	}
	form := url.Values{}
	for _, in := range inputs {
		form.Set(in[1], html.UnescapeString(in[2]))
	}
	resp, body = postForm(t, browser, base+"/saml/"+ws+"/acs", form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ACS: %d\n%s", resp.StatusCode, body)
	}
	return body
}

// TestDemoModeSignInThroughDemoIdP walks the README's demo path with a
// cookie-keeping client: the demo IdP signs a real assertion, the ACS runs
// JIT, the person is signed in, and the JIT user is visible over SCIM with
// the printed token. It pins down that demo mode wires the demo workspaces
// to the demo IdP.
func TestDemoModeSignInThroughDemoIdP(t *testing.T) {
	banner, _, stop := startServe(t, []string{"serve", "--listen", "127.0.0.1:0"}, nil)
	defer stop()
	base := banner["Base URL"]
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	demoSignIn(t, browser, base, "demo", "Jane.Doe@example.com")

	resp, err := browser.Get(base + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	me, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(me), "Jane.Doe@example.com") {
		t.Fatalf("/api/v1/me after sign-in: %d %s", resp.StatusCode, me)
	}

	// The JIT membership is what SCIM sees (R7, R13).
	code, list := httpDo(t, http.MethodGet, banner["SCIM base URL"]+"/Users?filter="+url.QueryEscape(`userName eq "jane.doe@example.com"`), banner["SCIM token"], nil)
	var page1 struct {
		TotalResults int
		Resources    []map[string]any
	}
	if code != http.StatusOK || json.Unmarshal(list, &page1) != nil || page1.TotalResults != 1 {
		t.Fatalf("SCIM lookup of the JIT user: %d %s", code, list)
	}

	// Joining demo-hr needs verification: the link lands in the outbox.
	demoSignIn(t, browser, base, "demo-hr", "Jane.Doe@example.com")
	code, outbox := httpDo(t, http.MethodGet, banner["Outbox API"], banner["Admin token"], nil)
	if code != http.StatusOK || !strings.Contains(string(outbox), "Confirm joining Demo HR") || !strings.Contains(string(outbox), `"to":"Jane.Doe@example.com"`) {
		t.Fatalf("outbox after joining demo-hr: %d %s", code, outbox)
	}
}

// TestServeSendsJoinMailOverSMTP checks the --smtp-* wiring: with an SMTP
// host the join link goes out over SMTP (to a test server) and is recorded
// in the outbox as sent.
func TestServeSendsJoinMailOverSMTP(t *testing.T) {
	smtpSrv := mailtest.Start(t, mailtest.Options{})
	banner, _, stop := startServe(t, []string{"serve", "--listen", "127.0.0.1:0", "--smtp-host", smtpSrv.Host,
		"--smtp-port", strconv.Itoa(smtpSrv.Port), "--smtp-tls", "none", "--smtp-from", "scimjit <noreply@example.test>"}, nil)
	defer stop()
	base := banner["Base URL"]
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	demoSignIn(t, browser, base, "demo", "sam@example.test")
	demoSignIn(t, browser, base, "demo-hr", "sam@example.test")

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	msg := smtpSrv.Next(ctx, t)
	if len(msg.To) != 1 || msg.To[0] != "sam@example.test" || !strings.Contains(msg.Subject, "Demo HR") || !strings.Contains(msg.Text, base+"/join/") {
		t.Fatalf("message %+v", msg)
	}
}
