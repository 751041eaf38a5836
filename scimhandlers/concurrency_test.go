package scimhandlers

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
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

// raceStore runs hook once, inside the first UpdateUser callback after it
// is set: after the write read the user, before its compare-and-set.
type raceStore struct {
	storage.Store
	hook atomic.Pointer[func()]
}

func (s *raceStore) UpdateUser(ctx context.Context, ws, id string, ifVersion int64, fn func(*storage.User) error) (storage.User, error) {
	return s.Store.UpdateUser(ctx, ws, id, ifVersion, func(u *storage.User) error {
		if h := s.hook.Swap(nil); h != nil {
			(*h)()
		}
		return fn(u)
	})
}

// TestUserPatchSeesConcurrentGroupChange: a group PATCH that commits while
// a user PATCH is under way (after it read the user), and that changes no
// roles by itself (the user's explicit value wins over the rule), does
// not make the user PATCH decide roles from the groups it read: the user
// ends with the roles of the two PATCHes applied one after the other.
func TestUserPatchSeesConcurrentGroupChange(t *testing.T) {
	t.Parallel()
	rs := &raceStore{Store: newTestEnv(t).store}
	e := newTestEnvWithStore(t, rs)
	c := e.workspace("userrace", func(w *storage.Workspace) {
		w.Settings.Roles.GroupRules = []storage.GroupRule{{Group: "eng", Roles: storage.Roles{Dev: storage.RoleAnalyst}}}
	})
	r := c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"race@example.com",`+
		`"`+RoleURN+`":{"workato_role":"Admin"}}`).expect(t, 201)
	id := str(r.body, "id")
	g := c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"eng"}`).expect(t, 201)
	gid := str(g.body, "id")
	for _, step := range []struct {
		op, want string
	}{
		{"add", storage.RoleAnalyst},     // in eng by the time the user PATCH applies: the rule decides
		{"remove", storage.RoleOperator}, // out of eng again: the default
	} {
		// Put the explicit value back (it wins: no roles change with eng).
		c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","path":"`+RoleURN+`:workato_role","value":"Admin"}]}`).expect(t, 200)
		hook := func() {
			c.do("PATCH", "/Groups/"+gid, patchPrefix+`[{"op":"`+step.op+`","path":"members","value":[{"value":"`+id+`"}]}]}`).expect(t, 200)
		}
		rs.hook.Store(&hook)
		got := c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"remove","path":"`+RoleURN+`:workato_role"}]}`).expect(t, 200)
		if rs.hook.Load() != nil {
			t.Fatal("the group PATCH did not run inside the user PATCH")
		}
		eq(t, "workato_role after the group "+step.op+" raced the user PATCH", role(got.body, "workato_role"), step.want)
		stored, err := e.store.GetUser(context.Background(), "userrace", id)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "stored DEV role after the group "+step.op, stored.Roles.Dev, step.want)
	}
}
