package scimhandlers

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

// ctxStore records, for the store calls the SCIM handlers make, which ran
// after the request's context was done and which got a context that is
// not the request's. It calls the real store without the cancellation, as
// a store that does not notice it would, so that only the handler's own
// checks can stop the work; and it cancels the request when cancelOn is
// first called.
type ctxStore struct {
	storage.Store
	ws       string
	mu       sync.Mutex
	cancelOn string
	cancel   context.CancelFunc
	late     []string
	foreign  []string
}

func (s *ctxStore) call(ctx context.Context, method string) context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		s.late = append(s.late, method)
	}
	if reqctx.Workspace(ctx) != s.ws {
		s.foreign = append(s.foreign, method)
	}
	if method == s.cancelOn && s.cancel != nil {
		s.cancel()
		s.cancel = nil
	}
	return context.WithoutCancel(ctx)
}

func (s *ctxStore) ListSCIMTokens(ctx context.Context, ws string) ([]storage.SCIMToken, error) {
	return s.Store.ListSCIMTokens(s.call(ctx, "ListSCIMTokens"), ws)
}
func (s *ctxStore) GetWorkspace(ctx context.Context, id string) (storage.Workspace, error) {
	return s.Store.GetWorkspace(s.call(ctx, "GetWorkspace"), id)
}
func (s *ctxStore) GetOrCreateAccount(ctx context.Context, a storage.Account) (storage.Account, bool, error) {
	return s.Store.GetOrCreateAccount(s.call(ctx, "GetOrCreateAccount"), a)
}
func (s *ctxStore) CreateUser(ctx context.Context, ws string, u storage.User, events ...storage.Event) (storage.User, error) {
	return s.Store.CreateUser(s.call(ctx, "CreateUser"), ws, u, events...)
}
func (s *ctxStore) GetUser(ctx context.Context, ws, id string) (storage.User, error) {
	return s.Store.GetUser(s.call(ctx, "GetUser"), ws, id)
}
func (s *ctxStore) GetUserByAccount(ctx context.Context, ws, accountID string) (storage.User, error) {
	return s.Store.GetUserByAccount(s.call(ctx, "GetUserByAccount"), ws, accountID)
}
func (s *ctxStore) FindUsers(ctx context.Context, ws string, by storage.UserIndex, v string, o storage.FindOptions) (storage.UsersFound, error) {
	return s.Store.FindUsers(s.call(ctx, "FindUsers"), ws, by, v, o)
}
func (s *ctxStore) ListUsers(ctx context.Context, ws string, offset, limit int) ([]storage.User, int, error) {
	return s.Store.ListUsers(s.call(ctx, "ListUsers"), ws, offset, limit)
}
func (s *ctxStore) UpdateUser(ctx context.Context, ws, id string, v int64, fn func(*storage.User) error) (storage.User, error) {
	return s.Store.UpdateUser(s.call(ctx, "UpdateUser"), ws, id, v, fn)
}
func (s *ctxStore) DeleteUser(ctx context.Context, ws, id string, v int64) error {
	return s.Store.DeleteUser(s.call(ctx, "DeleteUser"), ws, id, v)
}
func (s *ctxStore) CreateGroup(ctx context.Context, ws string, g storage.Group, events ...storage.Event) (storage.Group, error) {
	return s.Store.CreateGroup(s.call(ctx, "CreateGroup"), ws, g, events...)
}
func (s *ctxStore) GetGroup(ctx context.Context, ws, id string) (storage.Group, error) {
	return s.Store.GetGroup(s.call(ctx, "GetGroup"), ws, id)
}
func (s *ctxStore) FindGroups(ctx context.Context, ws string, by storage.GroupIndex, v string) ([]storage.Group, error) {
	return s.Store.FindGroups(s.call(ctx, "FindGroups"), ws, by, v)
}
func (s *ctxStore) ListGroups(ctx context.Context, ws string, offset, limit int) ([]storage.Group, int, error) {
	return s.Store.ListGroups(s.call(ctx, "ListGroups"), ws, offset, limit)
}
func (s *ctxStore) ChangeGroup(ctx context.Context, ws, id string, ch storage.GroupChange) (storage.Group, error) {
	return s.Store.ChangeGroup(s.call(ctx, "ChangeGroup"), ws, id, ch)
}
func (s *ctxStore) DeleteGroup(ctx context.Context, ws, id string, v int64, events ...storage.Event) error {
	return s.Store.DeleteGroup(s.call(ctx, "DeleteGroup"), ws, id, v, events...)
}
func (s *ctxStore) UserGroups(ctx context.Context, ws string, ids []string) (map[string][]storage.GroupRef, error) {
	return s.Store.UserGroups(s.call(ctx, "UserGroups"), ws, ids)
}
func (s *ctxStore) AppendEvents(ctx context.Context, ws string, e ...storage.Event) ([]storage.Event, error) {
	return s.Store.AppendEvents(s.call(ctx, "AppendEvents"), ws, e...)
}

// TestWorkStopsWhenTheClientIsGone: once the request's context is done
// (client gone, deadline passed), a scan, a multi-key lookup and a member
// filter stop before their next store call; they used to run to the end.
func TestWorkStopsWhenTheClientIsGone(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("gone", nil)
	seedUsers(t, e.store, c.ws, 4*scanBatch, func(i int) map[string]any { return map[string]any{"title": fmt.Sprint(i)} })
	var ids []string
	for i := range 3 {
		ids = append(ids, c.createUser(t, fmt.Sprintf("member%d@acme.com", i)))
	}
	r := c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G",
		"members":[{"value":"`+strings.Join(ids, `"},{"value":"`)+`"}]}`).expect(t, 201)
	gid := str(r.body, "id")
	cs := &ctxStore{Store: e.store, ws: c.ws}
	h := New(Config{Store: cs, MaxResults: 100, TokenCacheTTL: time.Hour})
	srv := routed(h)
	var terms []string
	for i := range 10 {
		terms = append(terms, fmt.Sprintf(`userName eq "seed%05d@acme.com"`, i))
	}
	for _, tc := range []struct{ name, method, path, body, cancelOn string }{
		{"scan", "GET", "/Users?filter=" + q(`title pr`), "", "ListUsers"},
		{"scan with groups", "GET", "/Users?filter=" + q(`title pr or groups pr`), "", "ListUsers"},
		{"sorted scan", "GET", "/Users?sortBy=title", "", "ListUsers"},
		{"root scan", "GET", "/?filter=" + q(`title pr`), "", "ListUsers"},
		{"lookups", "GET", "/Users?filter=" + q(strings.Join(terms, " or ")), "", "FindUsers"},
		{"lookups with a projection", "GET", "/Users?attributes=title&filter=" + q(strings.Join(terms, " or ")), "", "FindUsers"},
		{"member filter", "PATCH", "/Groups/" + gid, patchPrefix + `[{"op":"remove","path":"members[type eq \"User\"]"}]}`, "GetGroup"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		cs.mu.Lock()
		cs.cancelOn, cs.cancel, cs.late = tc.cancelOn, cancel, nil
		cs.mu.Unlock()
		req := httptest.NewRequestWithContext(ctx, tc.method, "/scim/v2/"+c.ws+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+c.token)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		cancel()
		cs.mu.Lock()
		if cs.cancel != nil {
			t.Errorf("%s: %s was never called", tc.name, tc.cancelOn)
		}
		if len(cs.late) > 0 {
			t.Errorf("%s: store calls after the context was done: %v", tc.name, cs.late)
		}
		cs.mu.Unlock()
	}
	r = c.do("GET", "/Groups/"+gid, "").expect(t, 200)
	eq(t, "members untouched", len(list(r.body, "members")), 3)
}

// TestStoreCallsGetTheRequestContext: every store call of the SCIM
// handlers gets the request's context (its deadline and cancellation).
func TestStoreCallsGetTheRequestContext(t *testing.T) {
	base := newTestEnv(t)
	cs := &ctxStore{Store: base.store, ws: "reqctx"}
	e := newTestEnvWithStore(t, cs)
	c := e.workspace("reqctx", nil)
	cs.mu.Lock()
	cs.foreign = nil // the test's own setup calls
	cs.mu.Unlock()
	id := c.createUser(t, "ctx@acme.com")
	c.do("GET", "/Users/"+id, "").expect(t, 200)
	c.do("GET", "/Users/"+id+"?attributes=userName", "").expect(t, 200)
	c.do("GET", "/Users?filter="+q(`userName eq "ctx@acme.com"`), "").expect(t, 200)
	c.do("GET", "/Users?filter="+q(`title pr or groups pr`)+"&sortBy=userName", "").expect(t, 200)
	c.do("GET", "/?filter="+q(`displayName pr`), "").expect(t, 200)
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","path":"title","value":"T"}]}`).expect(t, 200)
	c.do("PUT", "/Users/"+id, `{`+userSchemaJSON+`,"userName":"ctx@acme.com","active":false}`).expect(t, 200)
	c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"ctx@acme.com"}`).expect(t, 201) // re-activation
	r := c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G"}`).expect(t, 201)
	gid := str(r.body, "id")
	c.do("PATCH", "/Groups/"+gid, patchPrefix+`[{"op":"add","path":"members","value":[{"value":"`+id+`"}]},
		{"op":"remove","path":"members[type eq \"User\" and value eq \"x\"]"}]}`).expect(t, 200)
	c.do("GET", "/Groups?filter="+q(`members[value eq "`+id+`"]`), "").expect(t, 200)
	c.do("PUT", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G2"}`).expect(t, 200)
	c.do("DELETE", "/Groups/"+gid, "").expect(t, 204)
	c.do("DELETE", "/Users/"+id, "").expect(t, 204)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.foreign) > 0 {
		t.Errorf("store calls without the request's context: %v", cs.foreign)
	}
}
