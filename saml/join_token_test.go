package saml_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimjit/scimjit/saml/mail"
	"github.com/scimjit/scimjit/storage"
)

// joinSetup: jane is a member of fin and has a pending join to hr; it
// returns her browser and the link from the mail.
func joinSetup(t *testing.T, opts joinOptions, extra ...string) (*joinEnv, *browser, string) {
	t.Helper()
	je := newJoinEnv(t, opts)
	je.workspace(t, "fin", nil)
	je.workspace(t, "hr", nil)
	for _, ws := range extra {
		je.workspace(t, ws, nil)
	}
	b := signInToA(t, je)
	pendingJoin(t, b, "hr", janeInHR)
	return je, b, joinLink(t, je.nextMail(t))
}

func memberships(t *testing.T, je *joinEnv, ws string) int {
	t.Helper()
	_, n, err := je.Store.ListUsers(t.Context(), ws, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestJoinLinkIsSingleUse(t *testing.T) {
	je, b, link := joinSetup(t, joinOptions{})
	form := b.get(link).form(t, "/join/confirm")
	if pg := b.post("/join/confirm", form); pg.status != http.StatusOK || b.me().ActiveWorkspace != "hr" {
		t.Fatalf("first confirm: %d", pg.status)
	}
	// The same form again (a double submit, or a replay): refused.
	form.Set("csrf_token", b.get("/").form(t, "/logout").Get("csrf_token"))
	pg := b.post("/join/confirm", form)
	if pg.status != http.StatusGone || !strings.Contains(pg.body, `id="join-invalid"`) {
		t.Fatalf("second confirm: %d, want 410 and the invalid-link page\n%s", pg.status, pg.body)
	}
	if n := countEvents(je.events(t, "hr"), "join.verified"); n != 1 {
		t.Errorf("%d join.verified events, want 1", n)
	}
	if n := memberships(t, je, "hr"); n != 1 {
		t.Errorf("%d memberships in hr, want 1", n)
	}
}

func TestJoinConcurrentConfirmsMakeOneMembership(t *testing.T) {
	je, _, link := joinSetup(t, joinOptions{})
	const n = 8
	browsers := make([]*browser, n)
	forms := make([]url.Values, n)
	for i := range browsers {
		browsers[i] = je.browser(t)
		forms[i] = browsers[i].get(link).form(t, "/join/confirm")
	}
	pages := make([]page, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range browsers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			pages[i] = browsers[i].post("/join/confirm", forms[i])
		}()
	}
	close(start)
	wg.Wait()
	won, lost := 0, 0
	for _, pg := range pages {
		switch {
		case pg.status == http.StatusOK && strings.Contains(pg.body, `id="active-workspace">hr<`):
			won++
		case pg.status == http.StatusGone:
			lost++
		default:
			t.Errorf("unexpected confirm result %d:\n%s", pg.status, pg.body)
		}
	}
	if won != 1 || lost != n-1 {
		t.Errorf("%d confirms won and %d lost, want 1 and %d", won, lost, n-1)
	}
	if got := memberships(t, je, "hr"); got != 1 {
		t.Errorf("%d memberships in hr, want 1", got)
	}
	if got := countEvents(je.events(t, "hr"), "join.verified"); got != 1 {
		t.Errorf("%d join.verified events, want 1", got)
	}
}

func TestJoinLinkExpires(t *testing.T) {
	const ttl = time.Second
	je, b, link := joinSetup(t, joinOptions{verifyTTL: ttl})
	time.Sleep(ttl + 500*time.Millisecond) // a real TTL in Redis
	pg := b.get(link)
	if pg.status != http.StatusGone || !strings.Contains(pg.body, `id="join-invalid"`) {
		t.Fatalf("expired link: %d\n%s", pg.status, pg.body)
	}
	// The page offers a fresh email; it goes to the account's address.
	pg = b.post("/join/resend", pg.form(t, "/join/resend"))
	if pg.status != http.StatusOK || !strings.Contains(pg.body, "Check your email") {
		t.Fatalf("resend: %d\n%s", pg.status, pg.body)
	}
	m := je.nextMail(t)
	if m.To[0] != jane.Email {
		t.Errorf("resent mail went to %v", m.To)
	}
	fresh := joinLink(t, m)
	if fresh == link {
		t.Fatal("resend mailed the old link")
	}
	if pg := confirm(t, b, fresh); pg.status != http.StatusOK || b.me().ActiveWorkspace != "hr" {
		t.Fatalf("confirm fresh link: %d", pg.status)
	}
	u, err := je.Store.GetUserByAccount(t.Context(), "hr", b.me().Account.ID)
	if err != nil || u.Roles != (storage.Roles{Dev: "Analyst", Test: "Operator", Prod: "NoAccess"}) {
		t.Errorf("membership after resend = %+v, %v; want the roles of the original sign-in", u, err)
	}
}

func TestJoinLinkForOneWorkspaceCannotJoinAnother(t *testing.T) {
	je, b, link := joinSetup(t, joinOptions{}, "ops")
	acctID := b.me().Account.ID
	form := b.get(link).form(t, "/join/confirm")

	// The confirm form claims workspace ops.
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("workspace", "ops")
	if pg := b.post("/join/confirm", bad); pg.status != http.StatusBadRequest {
		t.Errorf("confirm hr token for ops: %d, want 400\n%s", pg.status, pg.body)
	}
	// The token rewritten to name ops: unknown (the hash covers it).
	forged := strings.Replace(tokenOf(link), ".hr.", ".ops.", 1)
	if pg := b.get("/join/" + forged); pg.status != http.StatusGone {
		t.Errorf("GET forged ops token: %d, want 410", pg.status)
	}
	bad.Set("token", forged)
	if pg := b.post("/join/confirm", bad); pg.status != http.StatusGone {
		t.Errorf("confirm forged ops token: %d, want 410", pg.status)
	}
	noMembership(t, je, "ops", acctID)
	noMembership(t, je, "hr", acctID)
	// The genuine link still works, for hr only.
	if pg := b.post("/join/confirm", form); pg.status != http.StatusOK || b.me().ActiveWorkspace != "hr" {
		t.Fatalf("genuine confirm: %d", pg.status)
	}
	noMembership(t, je, "ops", acctID)
}

func TestJoinTamperedLinksAreRefused(t *testing.T) {
	je, b, link := joinSetup(t, joinOptions{})
	acctID := b.me().Account.ID
	tok := tokenOf(link)
	last := tok[len(tok)-1]
	flip := byte('A')
	if last == 'A' {
		flip = 'B'
	}
	cases := map[string]struct {
		token string
		want  int
	}{
		"secret changed":     {tok[:len(tok)-1] + string(flip), http.StatusGone},
		"account changed":    {"00000000-0000-0000-0000-000000000000" + tok[strings.Index(tok, "."):], http.StatusGone},
		"secret truncated":   {tok[:len(tok)-5], http.StatusNotFound},
		"not a token at all": {"hello", http.StatusNotFound},
		"extra part":         {tok + ".x", http.StatusNotFound},
	}
	csrf := b.get(link).form(t, "/join/confirm").Get("csrf_token")
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if pg := b.get("/join/" + url.PathEscape(tc.token)); pg.status != tc.want {
				t.Errorf("GET: %d, want %d", pg.status, tc.want)
			}
			pg := b.post("/join/confirm", url.Values{"csrf_token": {csrf}, "token": {tc.token}, "workspace": {"hr"}})
			if pg.status != tc.want {
				t.Errorf("confirm: %d, want %d", pg.status, tc.want)
			}
		})
	}
	noMembership(t, je, "hr", acctID)
	if pg := confirm(t, b, link); pg.status != http.StatusOK {
		t.Fatalf("genuine link after the attempts: %d", pg.status)
	}
}

func TestJoinConfirmNeedsCSRFToken(t *testing.T) {
	je, b, link := joinSetup(t, joinOptions{})
	form := b.get(link).form(t, "/join/confirm")
	form.Del("csrf_token")
	if pg := b.post("/join/confirm", form); pg.status != http.StatusForbidden {
		t.Errorf("confirm without CSRF token: %d, want 403", pg.status)
	}
	// A token rendered for another browser does not work here either.
	other := je.browser(t)
	form.Set("csrf_token", other.get(link).form(t, "/join/confirm").Get("csrf_token"))
	if pg := b.post("/join/confirm", form); pg.status != http.StatusForbidden {
		t.Errorf("confirm with another browser's CSRF token: %d, want 403", pg.status)
	}
	if pg := b.post("/switch", url.Values{"workspace": {"fin"}}); pg.status != http.StatusForbidden {
		t.Errorf("switch without CSRF token: %d, want 403", pg.status)
	}
	noMembership(t, je, "hr", b.me().Account.ID)
}

func TestJoinNewerLinkReplacesOlder(t *testing.T) {
	je, b, first := joinSetup(t, joinOptions{})
	pendingJoin(t, b, "hr", janeInHR)
	second := joinLink(t, je.nextMail(t))
	if pg := b.get(first); pg.status != http.StatusGone {
		t.Errorf("older link after a newer one was sent: %d, want 410", pg.status)
	}
	if pg := confirm(t, b, second); pg.status != http.StatusOK {
		t.Fatalf("newer link: %d", pg.status)
	}
}

func TestJoinMailsAreRateLimitedPerAccount(t *testing.T) {
	je, b, _ := joinSetup(t, joinOptions{}) // one link mailed already
	for i := 2; i <= 5; i++ {
		pendingJoin(t, b, "hr", janeInHR)
		je.nextMail(t)
	}
	pg := b.signIn("hr", janeInHR)
	if pg.status != http.StatusTooManyRequests || !strings.Contains(pg.body, "Too many emails") {
		t.Fatalf("6th sign-in: %d, want 429 and the too-many-emails page\n%s", pg.status, pg.body)
	}
	// Resending counts against the same limit.
	home := b.get("/")
	f := url.Values{"csrf_token": {home.form(t, "/logout").Get("csrf_token")}, "account": {b.me().Account.ID}, "workspace": {"hr"}}
	if pg := b.post("/join/resend", f); pg.status != http.StatusTooManyRequests {
		t.Errorf("resend over the limit: %d, want 429", pg.status)
	}
	je.flushMail(t)
	if n := je.smtp.Pending(); n != 0 {
		t.Errorf("%d mails sent over the limit", n)
	}
	refused := 0
	for _, e := range je.events(t, "hr") {
		if e.Type == "join.refused" && e.Detail["reason"] == "rate_limited" {
			refused++
		}
	}
	if refused != 2 {
		t.Errorf("%d join.refused rate_limited events, want 2", refused)
	}
	// Another account is not affected.
	other := je.browser(t)
	bob := person{Email: "bob@example.com", FullName: "Bob"}
	if pg := other.signIn("fin", bob); pg.status != http.StatusOK {
		t.Fatalf("bob JIT: %d", pg.status)
	}
	pendingJoin(t, other, "hr", bob)
}

func TestJoinSurvivesMailFailure(t *testing.T) {
	je := newJoinEnv(t, joinOptions{})
	je.workspace(t, "fin", nil)
	je.workspace(t, "hr", nil)
	b := signInToA(t, je)

	// The SMTP server refuses transiently: three attempts, then "failed".
	je.smtp.Reject(451)
	sent := pendingJoin(t, b, "hr", janeInHR)
	je.flushMail(t)
	if n := je.smtp.Attempts(); n != 3 {
		t.Errorf("%d delivery attempts, want 3", n)
	}
	ms, err := je.Store.ListMail(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Status != mail.StatusFailed || !strings.Contains(ms[0].Error, "451") {
		t.Fatalf("outbox = %+v; want one failed message with the 451 reply", ms)
	}
	if !je.Logs.Contains(`"mail delivery failed"`) {
		t.Error("no warning logged for the failed delivery")
	}
	// The pending join survived: the link in the undelivered message works.
	lost := joinLinkPattern.FindString(ms[0].Text)
	if _, err := je.Store.GetVerification(t.Context(), b.me().Account.ID, tokenHash(tokenOf(lost))); err != nil {
		t.Fatalf("pending join lost with the mail: %v", err)
	}

	// Permanent refusal: one attempt.
	je.smtp.Reject(550)
	pg := b.post("/join/resend", sent.form(t, "/join/resend"))
	if pg.status != http.StatusOK {
		t.Fatalf("resend: %d\n%s", pg.status, pg.body)
	}
	je.flushMail(t)
	if n := je.smtp.Attempts(); n != 4 {
		t.Errorf("%d delivery attempts in all, want 4 (a 5xx is not retried)", n)
	}

	// The server is back: asking again delivers a link that works.
	je.smtp.Reject(0)
	pg = b.post("/join/resend", pg.form(t, "/join/resend"))
	if pg.status != http.StatusOK {
		t.Fatalf("resend: %d\n%s", pg.status, pg.body)
	}
	link := joinLink(t, je.nextMail(t))
	if pg := confirm(t, b, link); pg.status != http.StatusOK || b.me().ActiveWorkspace != "hr" {
		t.Fatalf("confirm: %d", pg.status)
	}
	ms, err = je.Store.ListMail(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0].Status != mail.StatusSent || ms[1].Status != mail.StatusFailed || ms[2].Status != mail.StatusFailed {
		t.Errorf("outbox statuses (newest first) = %v; want sent, failed, failed", statuses(ms))
	}
}

func statuses(ms []storage.Mail) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Status)
	}
	return out
}

func TestJoinResendWithoutPendingJoin(t *testing.T) {
	je, b, link := joinSetup(t, joinOptions{})
	form := b.get(link).form(t, "/join/confirm")
	if pg := b.post("/join/confirm", form); pg.status != http.StatusOK {
		t.Fatalf("confirm: %d", pg.status)
	}
	// After the join, the old link's page offers a resend, which now has
	// nothing pending and mails nothing.
	pg := b.get(link)
	pg = b.post("/join/resend", pg.form(t, "/join/resend"))
	if pg.status != http.StatusGone || !strings.Contains(pg.body, "/saml/hr/login") {
		t.Errorf("resend after the join: %d\n%s", pg.status, pg.body)
	}
	// Made-up account ids get the same answer and no mail.
	f := url.Values{"csrf_token": {b.get("/").form(t, "/logout").Get("csrf_token")}, "account": {"nobody"}, "workspace": {"hr"}}
	if pg := b.post("/join/resend", f); pg.status != http.StatusGone {
		t.Errorf("resend for an unknown account: %d, want 410", pg.status)
	}
	je.flushMail(t)
	if n := je.smtp.Pending(); n != 0 {
		t.Errorf("%d mails sent", n)
	}
}

func TestJoinConfirmNeverReactivates(t *testing.T) {
	je := newJoinEnv(t, joinOptions{})
	je.workspace(t, "fin", nil)
	scim := je.workspace(t, "hr", nil)
	b := signInToA(t, je)
	resp, body := je.Do(t, http.MethodPost, "/scim/v2/hr/Users", scim, map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": jane.Email, "active": true,
	})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("SCIM create: %d %s", resp.StatusCode, body)
	}
	pendingJoin(t, b, "hr", janeInHR)
	link := joinLink(t, je.nextMail(t))
	// The IdP deactivates her in hr before she confirms.
	u, err := je.Store.GetUserByAccount(t.Context(), "hr", b.me().Account.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := je.Store.UpdateUser(t.Context(), "hr", u.ID, 0, func(x *storage.User) error { x.Active = false; return nil }); err != nil {
		t.Fatal(err)
	}
	pg := b.post("/join/confirm", b.get(link).form(t, "/join/confirm"))
	if pg.status != http.StatusForbidden || !strings.Contains(pg.body, "deactivated") {
		t.Fatalf("confirm for a deactivated membership: %d, want 403\n%s", pg.status, pg.body)
	}
	x, err := je.Store.GetUser(t.Context(), "hr", u.ID)
	if err != nil || x.Active || x.Verified {
		t.Fatalf("membership = %+v, %v; want it still inactive and unverified", x, err)
	}
	if b.me().ActiveWorkspace != "fin" {
		t.Error("signed in to hr anyway")
	}
	refused := 0
	for _, e := range je.events(t, "hr") {
		if e.Type == "join.refused" && e.Detail["reason"] == "deactivated" {
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("%d join.refused deactivated events, want 1", refused)
	}
}
