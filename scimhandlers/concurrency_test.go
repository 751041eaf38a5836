package scimhandlers

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentCreatesOneWinner: of 50 simultaneous POSTs of one
// userName exactly one gets 201, the rest 409 uniqueness (R14).
func TestConcurrentCreatesOneWinner(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.workspace("race", nil)
	const n = 50
	statuses := make([]resp, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i] = c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"Same.User@acme.com","externalId":"ext-`+itoa(i)+`"}`)
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	for _, r := range statuses {
		switch r.status {
		case 201:
			created++
		case 409:
			eq(t, "scimType", str(r.body, "scimType"), "uniqueness")
		default:
			t.Errorf("unexpected %d: %s", r.status, r.raw)
		}
	}
	eq(t, "201s", created, 1)
	r := c.do("GET", "/Users?filter="+q(`userName eq "same.user@acme.com"`), "").expect(t, 200)
	eq(t, "stored", num(r.body, "totalResults"), 1)
}

// TestConcurrentMemberAdds: 500 simultaneous member-add PATCHes to one
// group lose nothing (R15). Like an IdP, each PATCH answered 503 (more
// requests at once than the Redis connection pool serves within its
// timeout, on a loaded machine) is sent again after its Retry-After; a
// re-sent add may have been applied before its answer was lost, which
// counts as a version but never as a member.
func TestConcurrentMemberAdds(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.workspace("members", nil)
	const n = 500
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"m`+itoa(i)+`@acme.com"}`)
			ids[i] = str(r.body, "id")
		}()
	}
	wg.Wait()
	r := c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Big"}`).expect(t, 201)
	gid := str(r.body, "id")
	failed := make(chan string, n)
	start := make(chan struct{})
	var resent atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body := patchPrefix + `[{"op":"Add","path":"members","value":[{"$ref":null,"value":"` + ids[i] + `"}]}]}`
			r := c.do("PATCH", "/Groups/"+gid, body)
			for try := 0; r.status == http.StatusServiceUnavailable && try < 10; try++ {
				wait, err := strconv.Atoi(r.header.Get("Retry-After"))
				if err != nil || wait < 1 {
					break
				}
				time.Sleep(time.Duration(wait) * time.Second)
				resent.Add(1)
				r = c.do("PATCH", "/Groups/"+gid, body)
			}
			if r.status != 200 {
				failed <- r.raw
			}
		}()
	}
	close(start)
	wg.Wait()
	close(failed)
	for f := range failed {
		t.Errorf("member add failed: %s", f)
	}
	r = c.do("GET", "/Groups/"+gid, "").expect(t, 200)
	eq(t, "members", len(list(r.body, "members")), n)
	v := strings.TrimSuffix(strings.TrimPrefix(str(r.body, "meta.version"), `W/"`), `"`)
	if got, err := strconv.Atoi(v); err != nil || got < n+1 || int64(got) > int64(n+1)+resent.Load() {
		t.Errorf("version = %s, want %d (plus at most the %d re-sent adds)", v, n+1, resent.Load())
	}
}

// TestConcurrentUserPatches: simultaneous PATCHes of one user each add a
// different phone number; none is lost (the applier runs on the fresh
// copy inside the store's atomic update).
func TestConcurrentUserPatches(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.workspace("patches", nil)
	id := c.createUser(t, "p@acme.com")
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"add","path":"phoneNumbers","value":[{"value":"+1-555-`+itoa(1000+i)+`","type":"work"}]}]}`)
			if r.status != 200 {
				mu.Lock()
				bad = append(bad, r.raw)
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d PATCHes failed, first: %s", len(bad), bad[0])
	}
	r := c.do("GET", "/Users/"+id, "").expect(t, 200)
	phones := list(r.body, "phoneNumbers")
	eq(t, "phone numbers", len(phones), n)
	seen := map[string]bool{}
	for _, p := range phones {
		seen[str(p, "value")] = true
	}
	for i := 0; i < n; i++ {
		if !seen["+1-555-"+itoa(1000+i)] {
			t.Errorf("lost phone %d (have %s)", i, strings.Join(keys(seen), ","))
		}
	}
	eq(t, "version", str(r.body, "meta.version"), `W/"`+itoa(n+1)+`"`)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
