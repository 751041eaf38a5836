package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/saml/mail/mailtest"
	"github.com/scimjit/scimjit/server/webhooks/webhookstest"
	"github.com/scimjit/scimjit/storage/redistest"
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

// getPage GETs target with c and returns the status and the body.
func getPage(t *testing.T, c *http.Client, target string) (int, string) {
	t.Helper()
	resp, err := c.Get(target)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// demoSignIn signs browser in to ws through the demo IdP as email and
// returns the page the ACS ends on.
func demoSignIn(t *testing.T, browser *http.Client, base, ws, email string) string {
	t.Helper()
	code, page := getPage(t, browser, base+"/demo/idp")
	m := csrfRe.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil || !strings.Contains(page, `<option value="`+ws+`">`) {
		t.Fatalf("demo IdP form: %d\n%s", code, page)
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

// demoDelivery is one delivery on the demo webhooks page.
type demoDelivery struct {
	ID, Type string
	Verified bool
	Problem  string
}

var deliveryRe = regexp.MustCompile(`(?s)<article class="delivery" data-webhook-id="([^"]*)" data-type="([^"]*)">\s*<h3>[^<]*<span class="badge (on|off)">.*?</p>`)
var problemRe = regexp.MustCompile(`<span class="problem">([^<]*)</span>`)

// demoDeliveries reads workspace ws's deliveries off the demo webhooks
// page, newest first.
func demoDeliveries(t *testing.T, base, ws string) []demoDelivery {
	t.Helper()
	code, page := getPage(t, http.DefaultClient, base+"/demo/webhooks")
	_, section, ok := strings.Cut(page, `<section class="webhooks" id="webhooks-`+ws+`">`)
	if code != http.StatusOK || !ok || !strings.Contains(page, `<meta http-equiv="refresh"`) {
		t.Fatalf("demo webhooks page: %d, want a refreshing page with a section of %s:\n%s", code, ws, page)
	}
	section, _, _ = strings.Cut(section, "</section>")
	var out []demoDelivery
	for _, m := range deliveryRe.FindAllStringSubmatch(section, -1) {
		d := demoDelivery{ID: m[1], Type: m[2], Verified: m[3] == "on"}
		if p := problemRe.FindStringSubmatch(m[0]); p != nil {
			d.Problem = html.UnescapeString(p[1])
		}
		out = append(out, d)
	}
	return out
}

// waitDeliveries polls the demo webhooks page until ws shows at least n
// deliveries and a verified one of every type of want, and returns them.
func waitDeliveries(t *testing.T, base, ws string, n int, want ...string) []demoDelivery {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := demoDeliveries(t, base, ws)
		missing := slices.DeleteFunc(slices.Clone(want), func(typ string) bool {
			return slices.ContainsFunc(got, func(d demoDelivery) bool { return d.Type == typ && d.Verified })
		})
		if len(missing) == 0 && len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo webhooks of %s = %+v; want %d, and no verified %q", ws, got, n, missing)
		}
		time.Sleep(100 * time.Millisecond) // polling the page, as its refresh does
	}
}

// postDelivery posts body with headers h to the demo receiver.
func postDelivery(t *testing.T, base string, h http.Header, body []byte) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/demo/webhooks/receive", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDemoWebhooksPageShowsSignInDeliveries: demo mode delivers the demo
// workspaces' events to its own receiver (over http to its own loopback
// address, with no --webhooks-allow-private): after a demo sign-in the
// demo webhooks page, linked from the banner and the demo IdP, shows the
// JIT sign-in's user.created and signin.succeeded deliveries as verified.
// A delivery signed with the endpoint's secret by an independent signer
// verifies; the same delivery with its body altered is refused with 400
// and shown as not verified with the reason; a request that is no
// delivery is refused and not shown.
func TestDemoWebhooksPageShowsSignInDeliveries(t *testing.T) {
	banner, _, stop := startServe(t, []string{"serve", "--listen", "127.0.0.1:0"}, nil)
	defer stop()
	base := banner["Base URL"]
	if banner["Demo webhooks"] != base+"/demo/webhooks" {
		t.Fatalf("banner names demo webhooks %q, want %s/demo/webhooks", banner["Demo webhooks"], base)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	if _, form := getPage(t, browser, base+"/demo/idp"); !strings.Contains(form, `href="/demo/webhooks"`) {
		t.Errorf("the demo IdP page does not link the demo webhooks page:\n%s", form)
	}
	if got := demoDeliveries(t, base, "demo"); len(got) != 0 {
		t.Fatalf("deliveries before any sign-in: %+v", got)
	}
	demoSignIn(t, browser, base, "demo", "ada@example.com")
	waitDeliveries(t, base, "demo", 2, "user.created", "signin.succeeded")

	// The endpoint's secret, from a rotation through the admin API (the
	// receiver verifies with the endpoint's current secret).
	code, body := httpDo(t, http.MethodPost, banner["Admin API"]+"/workspaces/demo/webhooks/demo-receiver/rotate-secret",
		banner["Admin token"], map[string]any{"overlap": "0s"})
	var rot struct{ Secret string }
	if code != http.StatusOK || json.Unmarshal(body, &rot) != nil || rot.Secret == "" {
		t.Fatalf("rotate the demo endpoint's secret: %d %s", code, body)
	}
	delivery := []byte(`{"id":"msg_signed","type":"user.updated","time":"2026-01-02T03:04:05Z","workspace":"demo","cause":"scim.user.updated","data":{"id":"u1"}}`)
	h, err := webhookstest.Sign(rot.Secret, "msg_signed", time.Now(), delivery)
	if err != nil {
		t.Fatal(err)
	}
	if code := postDelivery(t, base, h, delivery); code != http.StatusNoContent {
		t.Fatalf("a delivery signed with the endpoint's secret: %d, want 204", code)
	}
	tampered := bytes.Replace(delivery, []byte(`"u1"`), []byte(`"u2"`), 1)
	h, err = webhookstest.Sign(rot.Secret, "msg_tampered", time.Now(), delivery)
	if err != nil {
		t.Fatal(err)
	}
	if code := postDelivery(t, base, h, tampered); code != http.StatusBadRequest {
		t.Fatalf("a tampered delivery: %d, want 400", code)
	}
	if code := postDelivery(t, base, http.Header{}, []byte("hello")); code != http.StatusBadRequest {
		t.Fatalf("a request that is no delivery: %d, want 400", code)
	}
	got := demoDeliveries(t, base, "demo")
	if len(got) < 4 || got[0].ID != "msg_tampered" || got[0].Verified ||
		got[0].Problem != "no signature matches the endpoint's secret" || got[1].ID != "msg_signed" || !got[1].Verified ||
		got[1].Type != "user.updated" {
		t.Fatalf("demo webhooks after the posts = %+v; want the tampered one (not verified, why) above the signed one (verified), newest first", got)
	}
	if hr := demoDeliveries(t, base, "demo-hr"); len(hr) != 0 {
		t.Errorf("demo-hr shows deliveries of demo: %+v", hr)
	}

	// A group of 5,000 members is a delivery well over the default body
	// limit: the receiver takes it (the SCIM limit), verifies it whole and
	// shows its beginning.
	members := make([]string, 5000)
	for i := range members {
		members[i] = fmt.Sprintf(`{"value":"user%015d","display":"member %d"}`, i, i)
	}
	large := []byte(`{"id":"msg_large","type":"group.created","time":"2026-01-02T03:04:05Z","workspace":"demo","cause":"scim.group.created",` +
		`"data":{"id":"g1","displayName":"Everyone","members":[` + strings.Join(members, ",") + `]}}`)
	h, err = webhookstest.Sign(rot.Secret, "msg_large", time.Now(), large)
	if err != nil {
		t.Fatal(err)
	}
	if code := postDelivery(t, base, h, large); code != http.StatusNoContent {
		t.Fatalf("a delivery of %d bytes: %d, want 204", len(large), code)
	}
	if got := demoDeliveries(t, base, "demo"); len(got) == 0 || got[0].ID != "msg_large" || !got[0].Verified {
		t.Fatalf("after the large delivery: %+v", got[:min(len(got), 1)])
	}
	if _, page := getPage(t, http.DefaultClient, base+"/demo/webhooks"); !strings.Contains(page, fmt.Sprintf("(%d bytes in all; the first 65536 are shown)", len(large))) {
		t.Errorf("the demo page does not say the large delivery is cut short")
	}
}

// TestDemoWebhooksAcrossRestarts: demo mode on a persisted Redis keeps
// one demo endpoint per workspace across restarts, re-pointed at the new
// address (another port here), and its deliveries still verify.
func TestDemoWebhooksAcrossRestarts(t *testing.T) {
	rs := redistest.Start(t)
	args := []string{"serve", "--listen", "127.0.0.1:0", "--demo", "--redis-url", rs.URL()}
	for i, email := range []string{"first@example.com", "second@example.com"} {
		banner, _, stop := startServe(t, args, nil)
		base := banner["Base URL"]
		jar, _ := cookiejar.New(nil)
		demoSignIn(t, &http.Client{Jar: jar}, base, "demo", email)
		got := waitDeliveries(t, base, "demo", 2*(i+1), "user.created", "signin.succeeded")
		if n := len(got); n != 2*(i+1) || slices.ContainsFunc(got, func(d demoDelivery) bool { return !d.Verified }) {
			t.Errorf("start %d: deliveries %+v, want %d verified (every sign-in so far, each once)", i+1, got, 2*(i+1))
		}
		code, body := httpDo(t, http.MethodGet, banner["Admin API"]+"/workspaces/demo/webhooks", banner["Admin token"], nil)
		var list struct {
			Webhooks []struct{ ID, URL string }
		}
		if code != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Webhooks) != 1 ||
			list.Webhooks[0].ID != "demo-receiver" || list.Webhooks[0].URL != base+"/demo/webhooks/receive" {
			t.Errorf("start %d: endpoints %d %s, want the one demo endpoint at %s/demo/webhooks/receive", i+1, code, body, base)
		}
		stop()
	}
}
