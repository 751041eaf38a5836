package saml_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// TestRedisFaultsCorruptNothing puts a fault-injecting proxy between the
// server's store and a real redis-server (redistest.FaultProxy): requests
// that never reach Redis, replies cut after the command ran, replies held
// back beyond the client's timeout. Under concurrent SCIM creates, JIT
// sign-ins and joins it checks that every answer is a success, a 503 with
// Retry-After, or a refusal the workload expects, never a wrong 404, 409
// or a 500; that the client's retry after a 503 succeeds; and afterwards
// that every write acknowledged with 2xx is there and the checker finds no
// inconsistency in the records and indexes.
func TestRedisFaultsCorruptNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection takes a while")
	}
	srv := redistest.Start(t)
	proxy := redistest.StartFaultProxy(t, srv.Addr, uint64(time.Now().UnixNano()))
	const timeout = 300 * time.Millisecond
	faulty, err := redisstore.Open(t.Context(), redisstore.Options{
		URL:     "redis://:" + url.QueryEscape(srv.Password) + "@" + proxy.Addr(),
		Timeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = faulty.Close() })
	direct := redistest.OpenStore(t, srv)
	je := newJoinEnv(t, joinOptions{wrapStore: func(storage.Store) storage.Store { return faulty },
		// Every sign-in of the workload comes from this one address.
		loginLimit: 100000})
	je.workspace(t, "fin", nil)
	je.workspace(t, "hr", nil)
	token := je.CreateSCIMToken(t, "fin")

	proxy.SetFaults(redistest.Faults{CutBefore: 0.02, CutAfter: 0.04, Delay: 0.02, DelayFor: 2 * timeout})
	var (
		mu       sync.Mutex
		failures []string
		scimIDs  []string
		jitOK    []string
		joinsOK  []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var wg sync.WaitGroup
	// SCIM creates, four at a time: a 503 carries Retry-After and the same
	// request, re-sent, succeeds.
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				userName := fmt.Sprintf("scim-%d-%d@fault.example", w, i)
				id, err := scimCreate(je.URL+"/scim/v2/fin/Users", token, userName)
				if err != nil {
					fail("scim create %s: %v", userName, err)
					continue
				}
				mu.Lock()
				scimIDs = append(scimIDs, id)
				mu.Unlock()
			}
		}()
	}
	// JIT first sign-ins: a 503 page asks to try again; signing in again
	// succeeds.
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := je.browser(t)
			for i := 0; i < 4; i++ {
				p := person{Email: fmt.Sprintf("jit-%d-%d@fault.example", w, i), FullName: "Jit Person"}
				if err := signInRetrying(t, je, b, "fin", p); err != nil {
					fail("jit sign-in %s: %v", p.Email, err)
					continue
				}
				mu.Lock()
				jitOK = append(jitOK, p.Email)
				mu.Unlock()
			}
		}()
	}
	// Joins: a member of fin signs in to hr, confirms the emailed link.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 3; i++ {
			p := person{Email: fmt.Sprintf("join-%d@fault.example", i), FullName: "Join Person", Role: "Analyst"}
			b := je.browser(t)
			if err := joinRetrying(t, je, direct, b, p); err != nil {
				fail("join %s: %v", p.Email, err)
				continue
			}
			mu.Lock()
			joinsOK = append(joinsOK, p.Email)
			mu.Unlock()
		}
	}()
	wg.Wait()
	proxy.SetFaults(redistest.Faults{})
	t.Logf("faults injected: %d cut before, %d cut after, %d delayed; acknowledged: %d SCIM creates, %d JIT sign-ins, %d joins",
		proxy.CutsBefore.Load(), proxy.CutsAfter.Load(), proxy.Delays.Load(), len(scimIDs), len(jitOK), len(joinsOK))
	for _, f := range failures {
		t.Error(f)
	}
	if proxy.CutsBefore.Load()+proxy.CutsAfter.Load()+proxy.Delays.Load() == 0 {
		t.Fatal("no fault was injected")
	}

	// Every acknowledged write is there.
	ctx := t.Context()
	for _, id := range scimIDs {
		if _, err := direct.GetUser(ctx, "fin", id); err != nil {
			t.Errorf("acknowledged SCIM user %s: %v", id, err)
		}
	}
	for _, email := range jitOK {
		if l, err := direct.LoginLookup(ctx, "fin", email); err != nil || !l.Member || !l.User.Verified {
			t.Errorf("acknowledged JIT sign-in %s: %+v, %v", email, l, err)
		}
	}
	for _, email := range joinsOK {
		if l, err := direct.LoginLookup(ctx, "hr", email); err != nil || !l.Member || !l.User.Verified {
			t.Errorf("acknowledged join %s: %+v, %v", email, l, err)
		}
	}
	// No request was answered 500.
	for _, rec := range je.Logs.Records() {
		if rec["msg"] == "request" && rec["status"] == float64(http.StatusInternalServerError) {
			t.Errorf("a request was answered 500: %v", rec)
		}
	}
	// The records and indexes are consistent.
	report, err := direct.Check(ctx, redisstore.CheckOptions{})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	for _, p := range report.Problems {
		t.Errorf("inconsistency: %+v", p)
	}
}

// retries bounds how often a workload step re-sends after a 503.
const retries = 100

// scimCreate POSTs a user, re-sending the same request after a 503 (which
// must carry Retry-After), and returns the id of the 201.
func scimCreate(endpoint, token, userName string) (string, error) {
	body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + userName +
		`","emails":[{"value":"` + userName + `","primary":true}],"active":true}`
	for try := 0; try < retries; try++ {
		req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated:
			var u struct{ ID string }
			if err := json.Unmarshal(raw, &u); err != nil || u.ID == "" {
				return "", fmt.Errorf("201 without an id: %s", raw)
			}
			return u.ID, nil
		case http.StatusServiceUnavailable:
			if resp.Header.Get("Retry-After") == "" {
				return "", fmt.Errorf("503 without Retry-After: %s", raw)
			}
		default:
			return "", fmt.Errorf("try %d: %d %s", try, resp.StatusCode, raw)
		}
	}
	return "", fmt.Errorf("still 503 after %d tries", retries)
}

// signInRetrying signs b in to ws as p, starting again from the IdP after
// a 503, until the ACS answers with the redirect of a sign-in.
func signInRetrying(t *testing.T, je *joinEnv, b *browser, ws string, p person) error {
	t.Helper()
	for try := 0; try < retries; try++ {
		pg, err := trySignIn(t, je, b, ws, p)
		if err != nil {
			return err
		}
		switch pg.status {
		case http.StatusServiceUnavailable:
			continue
		case http.StatusSeeOther:
			return nil
		default:
			return fmt.Errorf("try %d: %d %s", try, pg.status, pageTitle(pg.body))
		}
	}
	return fmt.Errorf("still 503 after %d tries", retries)
}

// trySignIn is browser.signIn that reports a refused login redirect (the
// store was unavailable) as a 503 page instead of failing the test, and
// returns the ACS's own answer (a 303 for a sign-in), not the page the
// browser is sent to.
func trySignIn(t *testing.T, je *joinEnv, b *browser, ws string, p person) (page, error) {
	t.Helper()
	nr := *b.c
	nr.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := nr.Get(je.URL + "/saml/" + ws + "/login")
	if err != nil {
		return page{}, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return page{status: resp.StatusCode}, nil
	}
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, je.idp.idp.SSOURL.String()) {
		return page{}, fmt.Errorf("login: %d to %q", resp.StatusCode, loc)
	}
	form, err := je.idp.tryRespond(loc, p)
	if err != nil {
		// The IdP could not fetch the SP metadata: the server answered
		// 503 there. The person starts again.
		return page{status: http.StatusServiceUnavailable}, nil
	}
	resp, err = nr.PostForm(form.URL, url.Values{"SAMLResponse": {form.SAMLResponse}, "RelayState": {form.RelayState}})
	if err != nil {
		return page{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(body)}, nil
}

// joinRetrying makes p a member of fin by JIT, then joins hr through the
// emailed link, retrying every step after a 503 the way a person would.
func joinRetrying(t *testing.T, je *joinEnv, direct storage.Store, b *browser, p person) error {
	t.Helper()
	if err := signInRetrying(t, je, b, "fin", p); err != nil {
		return fmt.Errorf("sign in to fin: %w", err)
	}
	var link string
	for try := 0; link == "" && try < retries; try++ {
		pg, err := trySignIn(t, je, b, "hr", p)
		if err != nil {
			return err
		}
		switch {
		case pg.status == http.StatusServiceUnavailable:
			// Includes "the email could not be sent": sign in again for
			// a new link.
			continue
		case pg.status != http.StatusOK || !strings.Contains(pg.body, "Check your email"):
			return fmt.Errorf("sign in to hr: %d %s", pg.status, pageTitle(pg.body))
		}
		link = latestLink(t, direct, p.Email)
	}
	if link == "" {
		return fmt.Errorf("no join link after %d tries", retries)
	}
	var form url.Values
	for try := 0; form == nil && try < retries; try++ {
		pg := b.get(link)
		switch pg.status {
		case http.StatusOK:
			form = pg.form(t, "/join/confirm")
		case http.StatusServiceUnavailable:
		default:
			return fmt.Errorf("open link: %d %s", pg.status, pageTitle(pg.body))
		}
	}
	// The confirmation's own answer (not the page it sends the browser
	// to, which may meet the next fault): a redirect home, signed in.
	nr := *b.c
	nr.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for try := 0; try < retries; try++ {
		resp, err := nr.PostForm(je.URL+"/join/confirm", form)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusServiceUnavailable:
			continue
		case http.StatusSeeOther:
			return nil
		default:
			return fmt.Errorf("confirm: %d %s", resp.StatusCode, pageTitle(string(body)))
		}
	}
	return fmt.Errorf("confirm still 503 after %d tries", retries)
}

// latestLink returns the link of the newest join message written to the
// outbox for email, or "" when there is none.
func latestLink(t *testing.T, direct storage.Store, email string) string {
	t.Helper()
	// The newest message written to the outbox for email carries the link
	// of the current verification: each sign-in that answered "check your
	// email" wrote its message after replacing the previous verification.
	// Delivery order says nothing: the queue retries a message that met a
	// fault, so an older link may reach the SMTP server last.
	ms, err := direct.ListMail(t.Context(), 100)
	if err != nil {
		t.Fatalf("outbox: %v", err)
	}
	for _, m := range ms {
		if strings.EqualFold(m.To, email) {
			return joinLinkPattern.FindString(m.Text)
		}
	}
	return ""
}

// pageTitle is a page's <title>, for error messages.
func pageTitle(body string) string {
	_, after, ok := strings.Cut(body, "<title>")
	if !ok {
		return strings.TrimSpace(body[:min(len(body), 200)])
	}
	title, _, _ := strings.Cut(after, "</title>")
	return title
}
