package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/console"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
)

// consoleBrowser is an HTTP client with its own cookies, as one browser.
type consoleBrowser struct {
	t    testing.TB
	env  *servertest.Env
	c    *http.Client
	csrf string
}

func newConsoleBrowser(t testing.TB, env *servertest.Env) *consoleBrowser {
	b := &consoleBrowser{t: t, env: env, c: env.NewClient()}
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return b
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (b *consoleBrowser) do(method, path string, form url.Values) (int, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.env.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if m := csrfInput.FindSubmatch(data); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(data)
}

// post sends a form with the CSRF token of the last page this browser got.
func (b *consoleBrowser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", b.csrf)
	return b.do(http.MethodPost, path, form)
}

// signInAs gives the browser a person's session (as a SAML sign-in would
// have created it) in workspace ws; ttl is its lifetime.
func (b *consoleBrowser) signInAs(accountID, ws string, ttl time.Duration) {
	b.t.Helper()
	secret := "test-session-" + accountID + "-" + ws
	sum := sha256.Sum256([]byte(secret))
	now := time.Now()
	if err := b.env.Store.CreateSession(b.t.Context(), storage.Session{Key: hex.EncodeToString(sum[:]),
		AccountID: accountID, ActiveWorkspace: ws, CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
		b.t.Fatal(err)
	}
	u, _ := url.Parse(b.env.URL)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "scimjit_session", Value: secret, Path: "/"}})
	b.do(http.MethodGet, "/console/operator", nil) // a page for the CSRF token
}

// operatorSignIn signs the browser in on the operator page.
func (b *consoleBrowser) operatorSignIn(token string) {
	b.t.Helper()
	b.do(http.MethodGet, "/console/operator", nil)
	if st, body := b.post("/console/operator", url.Values{"token": {token}}); st != http.StatusSeeOther {
		b.t.Fatalf("operator sign-in: %d\n%s", st, body)
	}
	b.do(http.MethodGet, "/console", nil)
}

// addMember stores an account and its membership in ws.
func addMember(t *testing.T, env *servertest.Env, ws, email, source string, roles storage.Roles) storage.User {
	t.Helper()
	ctx := t.Context()
	acct, _, err := env.Store.GetOrCreateAccount(ctx, storage.Account{ID: "acct-" + email, Email: email, FullName: email,
		Source: source, OriginWorkspace: ws, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	u, err := env.Store.CreateUser(ctx, ws, storage.User{WorkspaceID: ws, AccountID: acct.ID, UserName: email,
		Emails: []string{email}, Active: true, Verified: true, Source: source, Roles: roles,
		Attributes: map[string]any{"name": map[string]any{"formatted": nameOf(email)}}})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// nameOf is a person's name made from an email's local part:
// "joe.bloggs@…" is "Joe Bloggs".
func nameOf(email string) string {
	local, _, _ := strings.Cut(email, "@")
	words := strings.Fields(strings.ReplaceAll(local, ".", " "))
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// TestConsoleAuthorization: every console route, enumerated from the
// router so that a new route cannot escape, refuses an anonymous visitor
// and an expired session (401), a member who is not an admin and the
// admin of another workspace (403); it admits the operator and the
// workspace's own admin (operator-only routes: the operator alone); a
// POST without its CSRF token is refused for everyone; and the changes
// are recorded with the person, or the admin token, as actor.
func TestConsoleAuthorization(t *testing.T) {
	env := servertest.New(t, nil)
	env.CreateWorkspace(t, "acme", nil)
	env.CreateWorkspace(t, "beta", nil)
	admin := addMember(t, env, "acme", "ada@acme.example", storage.SourceJIT, storage.Roles{Dev: "Admin", Test: "Admin", Prod: "Admin"})
	analyst := addMember(t, env, "acme", "ann@acme.example", storage.SourceJIT, storage.Roles{Dev: "Analyst", Test: "Admin", Prod: "Admin"})
	betaAdmin := addMember(t, env, "beta", "bob@beta.example", storage.SourceJIT, storage.Roles{Dev: "Admin"})
	ctx := t.Context()
	g, err := env.Store.CreateGroup(ctx, "acme", storage.Group{WorkspaceID: "acme", DisplayName: "Engineers", Members: []string{admin.ID}})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := env.Store.ListSCIMTokens(ctx, "acme")
	if err != nil || len(tokens) == 0 {
		t.Fatal(tokens, err)
	}
	hook, err := env.Store.CreateWebhook(ctx, "acme", storage.Webhook{URL: "https://hooks.acme.example/scimjit", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{":ws": "acme", ":user": analyst.ID, ":group": g.ID, ":token": tokens[0].ID,
		":endpoint": hook.ID, ":event": "1-0"}

	type route struct{ method, path string }
	var routes []route
	for _, r := range env.Server.Handler().(*echo.Echo).Routes() {
		if !strings.HasPrefix(r.Path, "/console") || slices.Contains(console.PublicRoutes, r.Method+" "+r.Path) {
			continue
		}
		p := r.Path
		for k, v := range params {
			p = strings.ReplaceAll(p, k, v)
		}
		if strings.Contains(p, ":") || strings.Contains(p, "*") {
			t.Fatalf("route %s has a parameter the test does not fill", r.Path)
		}
		routes = append(routes, route{r.Method, p})
	}
	if len(routes) < 15 {
		t.Fatalf("only %d console routes found: %v", len(routes), routes)
	}
	operatorOnly := func(p string) bool {
		return p == "/console" || !strings.HasPrefix(p, "/console/w/") || strings.HasSuffix(p, "/delete") && !strings.Contains(p, "/rules/")
	}

	anonymous := newConsoleBrowser(t, env)
	anonymous.do(http.MethodGet, "/console/operator", nil)
	member := newConsoleBrowser(t, env)
	member.signInAs(analyst.AccountID, "acme", time.Hour)
	otherAdmin := newConsoleBrowser(t, env)
	otherAdmin.signInAs(betaAdmin.AccountID, "beta", time.Hour)
	expired := newConsoleBrowser(t, env)
	expired.signInAs(admin.AccountID, "acme", 1500*time.Millisecond)
	expiredOp := newConsoleBrowser(t, env)
	expiredOp.operatorSignIn(env.AdminToken)
	// The operator session's record lapses: as after 30 idle minutes.
	var opKeys []string
	for _, ck := range expiredOp.c.Jar.Cookies(env.BaseURL) {
		if ck.Name == "scimjit_console" {
			sum := sha256.Sum256([]byte(ck.Value))
			opKeys = append(opKeys, hex.EncodeToString(sum[:]))
		}
	}
	if len(opKeys) != 1 {
		t.Fatalf("operator cookie: %v", opKeys)
	}
	if err := env.Store.DeleteSession(ctx, opKeys[0]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)

	for _, r := range routes {
		for _, tc := range []struct {
			name   string
			b      *consoleBrowser
			status int
		}{
			{"anonymous", anonymous, http.StatusUnauthorized},
			{"expired session", expired, http.StatusUnauthorized},
			{"expired operator session", expiredOp, http.StatusUnauthorized},
			{"member who is not an admin", member, http.StatusForbidden},
			{"admin of another workspace", otherAdmin, http.StatusForbidden},
		} {
			var st int
			var body string
			if r.method == http.MethodPost {
				st, body = tc.b.post(r.path, url.Values{"name": {"x"}, "token": {"y"}})
			} else {
				st, body = tc.b.do(r.method, r.path, nil)
			}
			if st != tc.status || !strings.Contains(body, `id="denied"`) {
				t.Errorf("%s %s as %s: status %d, want %d with the refusal page", r.method, r.path, tc.name, st, tc.status)
			}
		}
	}
	if _, err := env.Store.GetWorkspace(ctx, "acme"); err != nil {
		t.Fatalf("acme after the refused requests: %v", err)
	}

	// Allowed: every page for the operator and the own admin (the
	// operator pages for the operator alone).
	operator := newConsoleBrowser(t, env)
	operator.operatorSignIn(env.AdminToken)
	own := newConsoleBrowser(t, env)
	own.signInAs(admin.AccountID, "acme", time.Hour)
	for _, r := range routes {
		if r.method != http.MethodGet {
			continue
		}
		if st, body := operator.do(r.method, r.path, nil); st != http.StatusOK {
			t.Errorf("GET %s as operator: %d\n%s", r.path, st, body)
		}
		want := http.StatusOK
		if operatorOnly(r.path) {
			want = http.StatusForbidden
		}
		if st, _ := own.do(r.method, r.path, nil); st != want {
			t.Errorf("GET %s as the workspace's admin: %d, want %d", r.path, st, want)
		}
	}

	// CSRF: a POST without the token, or with another browser's, is
	// refused, and changes nothing.
	for _, r := range routes {
		if r.method != http.MethodPost {
			continue
		}
		for name, b := range map[string]*consoleBrowser{"operator": operator, "admin": own} {
			refusal := "Request refused"
			if name == "admin" && operatorOnly(r.path) {
				refusal = `id="denied"` // refused before the token is looked at
			}
			if st, body := b.do(http.MethodPost, r.path, url.Values{"name": {"x"}}); st != http.StatusForbidden || !strings.Contains(body, refusal) {
				t.Errorf("POST %s as %s without a CSRF token: %d", r.path, name, st)
			}
			if st, _ := b.do(http.MethodPost, r.path, url.Values{"name": {"x"}, "csrf_token": {anonymous.csrf}}); st != http.StatusForbidden {
				t.Errorf("POST %s as %s with another browser's CSRF token: %d", r.path, name, st)
			}
		}
	}
	if ws, err := env.Store.GetWorkspace(ctx, "acme"); err != nil || ws.Version != 1 {
		t.Fatalf("acme after the refused posts: version %d, %v", ws.Version, err)
	}
	if hooks, err := env.Store.ListWebhooks(ctx, "acme"); err != nil || len(hooks) != 1 || len(hooks[0].Secrets) != len(hook.Secrets) ||
		!hooks[0].UpdatedAt.Equal(hook.UpdatedAt) {
		t.Fatalf("acme's endpoints after the refused posts: %+v, %v", hooks, err)
	}

	// Changes carry their actor.
	own.do(http.MethodGet, "/console/w/acme", nil)
	if st, body := own.post("/console/w/acme/jit", url.Values{"enabled": {"on"}, "existingAccount": {"verify"},
		"defaultRole": {"Operator"}, "unknownRole": {"reject"}}); st != http.StatusSeeOther {
		t.Fatalf("admin saves JIT: %d\n%s", st, body)
	}
	operator.do(http.MethodGet, "/console/w/acme/scim", nil)
	if st, body := operator.post("/console/w/acme/scim/tokens", url.Values{"name": {"okta"}}); st != http.StatusOK || !strings.Contains(body, server.SCIMTokenPrefix) {
		t.Fatalf("operator creates a token: %d\n%s", st, body)
	}
	own.do(http.MethodGet, "/console/w/acme/webhooks", nil)
	if st, body := own.post("/console/w/acme/webhooks", url.Values{"url": {"https://hooks.acme.example/new"}}); st != http.StatusOK || !strings.Contains(body, "whsec_") {
		t.Fatalf("admin creates an endpoint: %d\n%s", st, body)
	}
	operator.do(http.MethodGet, "/console/w/acme/webhooks/"+hook.ID, nil)
	if st, body := operator.post("/console/w/acme/webhooks/"+hook.ID+"/rotate", url.Values{"overlap": {"1h"}}); st != http.StatusOK || !strings.Contains(body, "whsec_") {
		t.Fatalf("operator rotates a secret: %d\n%s", st, body)
	}
	events, err := env.Store.ListEvents(ctx, "acme", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var actors []string
	for _, e := range events {
		actors = append(actors, e.Type+" "+e.Actor)
	}
	for _, want := range []string{"admin.workspace.updated user:" + admin.ID, "admin.scim_token.created admin:" + server.DefaultAdminTokenName,
		"admin.webhook.created user:" + admin.ID, "admin.webhook.secret_rotated admin:" + server.DefaultAdminTokenName} {
		if !slices.Contains(actors, want) {
			t.Errorf("no event %q in %q", want, actors)
		}
	}
}

// TestConsoleMembersFilters: the members page lists the members that
// match its filters (role per environment, status, source, verification,
// combined), a page at a time with the filters kept in the page links,
// refuses a value it does not offer, and says so instead of listing
// when the store's filter indexes were never built.
func TestConsoleMembersFilters(t *testing.T) {
	env := servertest.New(t, nil)
	env.CreateWorkspace(t, "acme", nil)
	ctx := t.Context()
	admin := addMember(t, env, "acme", "ada@acme.example", storage.SourceJIT, storage.Roles{Dev: "Admin", Test: "Admin", Prod: "Admin"})
	ops := storage.Roles{Dev: "Operator", Test: "Operator", Prod: "Operator"}
	for i := range 27 {
		addMember(t, env, "acme", fmt.Sprintf("op%02d@acme.example", i), storage.SourceSCIM, ops)
	}
	gone := addMember(t, env, "acme", "gone.admin@acme.example", storage.SourceSCIM, storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Analyst"})
	if _, err := env.Store.UpdateUser(ctx, "acme", gone.ID, 0, func(u *storage.User) error { u.Active = false; return nil }); err != nil {
		t.Fatal(err)
	}
	newbie := addMember(t, env, "acme", "newbie@acme.example", storage.SourceJIT, storage.Roles{Dev: "Analyst", Test: "Analyst", Prod: "Admin"})
	if _, err := env.Store.UpdateUser(ctx, "acme", newbie.ID, 0, func(u *storage.User) error { u.Verified = false; return nil }); err != nil {
		t.Fatal(err)
	}
	b := newConsoleBrowser(t, env)
	b.signInAs(admin.AccountID, "acme", time.Hour)

	rows := regexp.MustCompile(`<tr data-user="([^"]+)"><td><a [^>]*>([^<]+)</a>`)
	count := regexp.MustCompile(`<p class="muted" id="member-count">([^<]*)</p>`)
	next := regexp.MustCompile(`<a href="([^"]+)" rel="next">`)
	get := func(path string, wantStatus int) (names []string, counted, nextURL string) {
		t.Helper()
		st, body := b.do(http.MethodGet, path, nil)
		if st != wantStatus {
			t.Fatalf("GET %s: %d, want %d\n%s", path, st, wantStatus, body)
		}
		for _, m := range rows.FindAllStringSubmatch(body, -1) {
			names = append(names, m[2])
		}
		if m := count.FindStringSubmatch(body); m != nil {
			counted = m[1]
		}
		if m := next.FindStringSubmatch(body); m != nil {
			nextURL = strings.ReplaceAll(m[1], "&amp;", "&")
		}
		return names, counted, nextURL
	}
	base := "/console/w/acme/members"

	// Unfiltered: 30 members, 25 on the first page, the rest after Next.
	names, counted, nu := get(base, http.StatusOK)
	if counted != "30 members" || len(names) != 25 || names[0] != "ada@acme.example" || nu == "" {
		t.Fatalf("first page: %q, %d rows from %v, next %q", counted, len(names), names[:1], nu)
	}
	names, _, nu2 := get(base+nu, http.StatusOK)
	if want := []string{"op24@acme.example", "op25@acme.example", "op26@acme.example", "gone.admin@acme.example",
		"newbie@acme.example"}; !slices.Equal(names, want) || nu2 != "" {
		t.Fatalf("second page %v (next %q), want %v", names, nu2, want)
	}

	for _, c := range []struct {
		query, count string
		want         []string
	}{
		{"?role=Admin&status=deactivated", "1 member match", []string{"gone.admin@acme.example"}},
		{"?role=Admin", "2 members match", []string{"ada@acme.example", "gone.admin@acme.example"}},
		{"?role=Admin&env=prod", "2 members match", []string{"ada@acme.example", "newbie@acme.example"}},
		{"?source=jit", "2 members match", []string{"ada@acme.example", "newbie@acme.example"}},
		{"?source=jit&verification=pending", "1 member match", []string{"newbie@acme.example"}},
		{"?status=active&role=Analyst", "1 member match", []string{"newbie@acme.example"}},
		{"?role=NoAccess", "0 members match", nil},
	} {
		names, counted, nu := get(base+c.query, http.StatusOK)
		if !slices.Equal(names, c.want) || counted != c.count || nu != "" {
			t.Errorf("%s: %v, %q, next %q; want %v, %q", c.query, names, counted, nu, c.want, c.count)
		}
	}
	// The form shows the filters applied.
	if _, body := b.do(http.MethodGet, base+"?role=Admin&env=prod&status=deactivated", nil); !strings.Contains(body, `<option selected>Admin</option>`) ||
		!strings.Contains(body, `<option value="prod" selected>PROD</option>`) || !strings.Contains(body, `<option value="deactivated" selected>`) ||
		!strings.Contains(body, `id="clear-filters"`) {
		t.Errorf("the filter form does not show the filters applied:\n%s", body)
	}

	// Paged with a filter: the filter stays in the Next link.
	names, counted, nu = get(base+"?role=Operator&source=scim", http.StatusOK)
	if counted != "27 members match" || len(names) != 25 || !strings.Contains(nu, "role=Operator") || !strings.Contains(nu, "source=scim") {
		t.Fatalf("filtered first page: %q, %d rows, next %q", counted, len(names), nu)
	}
	names, _, _ = get(base+nu, http.StatusOK)
	if want := []string{"op25@acme.example", "op26@acme.example"}; !slices.Equal(names, want) {
		t.Fatalf("filtered second page %v, want %v", names, want)
	}

	for _, q := range []string{"?role=admin", "?status=gone", "?source=ldap", "?verification=maybe", "?role=Admin&env=qa"} {
		get(base+q, http.StatusBadRequest)
	}

	// A workspace whose filter indexes were never built (written by an
	// earlier version): filters refuse with an explanation, the plain
	// list still works.
	if err := env.Store.(*redisstore.Store).Client().Del(ctx, "sj:{ws:acme}:ix:ufv").Err(); err != nil {
		t.Fatal(err)
	}
	if _, body := b.do(http.MethodGet, base+"?source=jit", nil); !strings.Contains(body, `id="filters-unavailable"`) ||
		!strings.Contains(body, "scimjit check --fix") || strings.Contains(body, `<tr data-user=`) {
		t.Errorf("a filter on unbuilt indexes:\n%s", body)
	}
	get(base+"?source=jit", http.StatusServiceUnavailable)
	if _, counted, _ := get(base, http.StatusOK); counted != "30 members" {
		t.Errorf("unfiltered list on unbuilt indexes: %q", counted)
	}
}

// TestConsoleMembersPaging: Next walks a filtered list to its end and
// Previous walks it back page by page to the first, which has neither
// Previous nor First; every link keeps the filter.
func TestConsoleMembersPaging(t *testing.T) {
	env := servertest.New(t, nil)
	env.CreateWorkspace(t, "acme", nil)
	admin := addMember(t, env, "acme", "ada@acme.example", storage.SourceJIT, storage.Roles{Dev: "Admin", Test: "Admin", Prod: "Admin"})
	for i := range 70 {
		src := storage.SourceSCIM
		if i%10 == 0 {
			src = storage.SourceJIT
		}
		addMember(t, env, "acme", fmt.Sprintf("m%02d@acme.example", i), src, storage.Roles{Dev: "Operator", Test: "Operator", Prod: "Operator"})
	}
	b := newConsoleBrowser(t, env)
	b.signInAs(admin.AccountID, "acme", time.Hour)
	rows := regexp.MustCompile(`<tr data-user="([^"]+)"><td><a [^>]*>([^<]+)</a>`)
	link := func(body, rel string) string {
		m := regexp.MustCompile(`<a href="([^"]+)" rel="` + rel + `">`).FindStringSubmatch(body)
		if m == nil {
			return ""
		}
		return "/console/w/acme/members" + strings.ReplaceAll(m[1], "&amp;", "&")
	}
	visit := func(u string) (names []string, body string) {
		t.Helper()
		st, body := b.do(http.MethodGet, u, nil)
		if st != http.StatusOK {
			t.Fatalf("GET %s: %d", u, st)
		}
		for _, m := range rows.FindAllStringSubmatch(body, -1) {
			names = append(names, m[2])
		}
		return names, body
	}
	u := "/console/w/acme/members?source=scim"
	var pages [][]string
	var last string
	for {
		names, body := visit(u)
		pages = append(pages, names)
		if len(pages) == 1 && (link(body, "prev") != "" || link(body, "first") != "") {
			t.Fatalf("the first page links back:\n%s", body)
		}
		next := link(body, "next")
		if next == "" {
			last = body
			break
		}
		if !strings.Contains(next, "source=scim") || len(pages) > 5 {
			t.Fatalf("next %q after %d pages", next, len(pages))
		}
		u = next
	}
	if len(pages) != 3 || len(pages[0]) != 25 || len(pages[2]) != 13 || pages[0][0] != "m01@acme.example" {
		t.Fatalf("pages of sizes %d, %d, %d starting %v; want 25, 25, 13 from m01", len(pages[0]), len(pages[1]), len(pages[2]), pages[0][:1])
	}
	body := last
	for i := len(pages) - 2; i >= 0; i-- {
		prev := link(body, "prev")
		if prev == "" || !strings.Contains(prev, "source=scim") {
			t.Fatalf("page %d: Previous is %q", i+2, prev)
		}
		var names []string
		names, body = visit(prev)
		if !slices.Equal(names, pages[i]) {
			t.Fatalf("Previous to page %d shows %v, want %v", i+1, names, pages[i])
		}
	}
	if link(body, "prev") != "" {
		t.Errorf("back on the first page, a Previous link remains")
	}
}

// TestConsoleMembersNameSearch: "Name (starts with)" finds members by the
// start of their full name, case-insensitively, shows the name column,
// says when it shows only the first matches, and explains instead of
// listing when the workspace's name index was never built.
func TestConsoleMembersNameSearch(t *testing.T) {
	env := servertest.New(t, nil)
	env.CreateWorkspace(t, "acme", nil)
	ctx := t.Context()
	admin := addMember(t, env, "acme", "ada@acme.example", storage.SourceJIT, storage.Roles{Dev: "Admin", Test: "Admin", Prod: "Admin"})
	named := func(email, name string) {
		u := addMember(t, env, "acme", email, storage.SourceSCIM, storage.Roles{Dev: "Operator", Test: "Operator", Prod: "Operator"})
		if _, err := env.Store.UpdateUser(ctx, "acme", u.ID, 0, func(u *storage.User) error {
			u.Attributes = map[string]any{"name": map[string]any{"formatted": name}}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	named("jane@acme.example", "Jane Doe")
	named("janet@acme.example", "Janet Ng")
	named("joe@acme.example", "Joe Bloggs")
	for i := range storage.NameSearchLimit + 1 {
		named(fmt.Sprintf("p%03d@acme.example", i), fmt.Sprintf("Pat %03d", i))
	}
	b := newConsoleBrowser(t, env)
	b.signInAs(admin.AccountID, "acme", time.Hour)
	rows := regexp.MustCompile(`<tr data-user="[^"]+"><td><a [^>]*>([^<]+)</a></td><td>([^<]*)</td>`)
	search := func(q string, wantStatus int) (names []string, body string) {
		t.Helper()
		st, body := b.do(http.MethodGet, "/console/w/acme/members?by=name&q="+url.QueryEscape(q), nil)
		if st != wantStatus {
			t.Fatalf("search %q: %d, want %d\n%s", q, st, wantStatus, body)
		}
		for _, m := range rows.FindAllStringSubmatch(body, -1) {
			names = append(names, m[2])
		}
		return names, body
	}
	if got, body := search("JANE", http.StatusOK); !slices.Equal(got, []string{"Jane Doe", "Janet Ng"}) ||
		!strings.Contains(body, "2 found") || !strings.Contains(body, `<option value="name" selected>Name (starts with)</option>`) {
		t.Errorf("search JANE: %v\n%s", got, body)
	}
	if got, _ := search("jane d", http.StatusOK); !slices.Equal(got, []string{"Jane Doe"}) {
		t.Errorf("search jane d: %v", got)
	}
	if got, body := search("doe", http.StatusOK); len(got) != 0 || strings.Contains(body, `id="search-capped"`) {
		t.Errorf("search doe (not the start of a name): %v", got)
	}
	if got, body := search("pat 0", http.StatusOK); len(got) != storage.NameSearchLimit || strings.Contains(body, `id="search-capped"`) {
		t.Errorf("search pat 0 (exactly %d): %d shown, capped notice %v", storage.NameSearchLimit, len(got), strings.Contains(body, `id="search-capped"`))
	}
	got, body := search("pat", http.StatusOK)
	if len(got) != storage.NameSearchLimit || got[0] != "Pat 000" || !strings.Contains(body, `id="search-capped"`) {
		t.Errorf("search pat: %d shown from %v, capped notice %v", len(got), got[:1], strings.Contains(body, `id="search-capped"`))
	}

	// A workspace marked by a version without the name index.
	if err := env.Store.(*redisstore.Store).Client().Set(ctx, "sj:{ws:acme}:ix:ufv", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, body := search("jane", http.StatusServiceUnavailable); len(got) != 0 || !strings.Contains(body, `id="name-search-unavailable"`) ||
		!strings.Contains(body, "scimjit check --fix") {
		t.Errorf("a name search on an unbuilt index: %v\n%s", got, body)
	}
	if st, body := b.do(http.MethodGet, "/console/w/acme/members?by=email&q=jane@acme.example", nil); st != http.StatusOK || !strings.Contains(body, "1 found") {
		t.Errorf("an email search on an unbuilt name index: %d\n%s", st, body)
	}
}
