package redisstore_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

// fillAll sets every exported field of the struct v points to (recursively)
// to a non-zero value, so that a field the wire format forgets comes back
// zero and the comparison fails.
func fillAll(t *testing.T, v any) {
	t.Helper()
	fillValue(t, reflect.ValueOf(v).Elem(), "x")
}

var fixedTime = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

func fillValue(t *testing.T, v reflect.Value, name string) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString("v-" + name)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte("b-" + name))
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillValue(t, s.Index(0), name+"0")
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		val := reflect.New(v.Type().Elem()).Elem()
		if v.Type().Elem().Kind() == reflect.Interface {
			val.Set(reflect.ValueOf("m-" + name))
		} else {
			fillValue(t, val, name+"v")
		}
		m.SetMapIndex(reflect.ValueOf("k-"+name), val)
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(fixedTime))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fillValue(t, v.Field(i), name+v.Type().Field(i).Name)
			}
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillValue(t, p.Elem(), name)
		v.Set(p)
	default:
		t.Fatalf("fillAll: field %s has kind %s the test does not know; extend it", name, v.Kind())
	}
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s does not round-trip:\n got %+v\nwant %+v", what, got, want)
	}
}

// TestEveryFieldRoundTrips stores records with every field of the storage
// model set and reads them back. It fails when a field is added to the
// model but not to the stored format.
func TestEveryFieldRoundTrips(t *testing.T) {
	ctx := context.Background()
	s := redistest.NewStore(t)

	var ws storage.Workspace
	fillAll(t, &ws)
	ws.ID = "fields"
	created, err := s.CreateWorkspace(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	ws.UpdatedAt, ws.Version = created.UpdatedAt, created.Version // assigned by the store
	got, err := s.GetWorkspace(ctx, ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "Workspace", got, ws)

	var tok storage.SCIMToken
	fillAll(t, &tok)
	if err := s.CreateSCIMToken(ctx, ws.ID, tok); err != nil {
		t.Fatal(err)
	}
	// LastUsed is stored by TouchSCIMToken, not by the create.
	if err := s.TouchSCIMToken(ctx, ws.ID, tok.ID, tok.LastUsed); err != nil {
		t.Fatal(err)
	}
	toks, err := s.ListSCIMTokens(ctx, ws.ID)
	if err != nil || len(toks) != 1 {
		t.Fatal(toks, err)
	}
	equal(t, "SCIMToken", toks[0], tok)

	var acct storage.Account
	fillAll(t, &acct)
	if _, _, err := s.GetOrCreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	gotAcct, err := s.GetAccount(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "Account", gotAcct, acct)

	var u storage.User
	fillAll(t, &u)
	u.WorkspaceID = ws.ID
	cu, err := s.CreateUser(ctx, ws.ID, u)
	if err != nil {
		t.Fatal(err)
	}
	u.Created, u.Modified, u.Version = cu.Created, cu.Modified, cu.Version
	gotUser, err := s.GetUser(ctx, ws.ID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "User", gotUser, u)

	var g storage.Group
	fillAll(t, &g)
	g.WorkspaceID = ws.ID
	g.Members = []string{u.ID}
	cg, err := s.CreateGroup(ctx, ws.ID, g)
	if err != nil {
		t.Fatal(err)
	}
	g.Created, g.Modified, g.Version = cg.Created, cg.Modified, cg.Version
	gotGroup, err := s.GetGroup(ctx, ws.ID, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "Group", gotGroup, g)

	var e storage.Event
	fillAll(t, &e)
	ce, err := s.AppendEvents(ctx, ws.ID, e)
	if err != nil {
		t.Fatal(err)
	}
	e.ID = ce[0].ID
	// After the group's membership.roles_changed event: the workspace's
	// group rules decide the member's roles from its explicit values.
	evs, err := s.ListEvents(ctx, ws.ID, "", 10)
	if err != nil || len(evs) != 2 || evs[0].Type != storage.RolesChangedEvent {
		t.Fatal(evs, err)
	}
	equal(t, "Event", evs[1], e)

	var sess storage.Session
	fillAll(t, &sess)
	sess.ExpiresAt = time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	gotSess, err := s.GetSession(ctx, sess.Key)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "Session", gotSess, sess)

	var v storage.Verification
	fillAll(t, &v)
	v.WorkspaceID = ws.ID
	v.ExpiresAt = time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	if err := s.CreateVerification(ctx, v); err != nil {
		t.Fatal(err)
	}
	gotV, err := s.GetVerification(ctx, v.AccountID, v.TokenHash)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "Verification", gotV, v)

	var m storage.Mail
	fillAll(t, &m)
	cm, err := s.AppendMail(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	m.ID, m.Time = cm.ID, cm.Time
	mails, err := s.ListMail(ctx, 1)
	if err != nil || len(mails) != 1 {
		t.Fatal(mails, err)
	}
	equal(t, "Mail", mails[0], m)

	var rw storage.ReceivedWebhook
	fillAll(t, &rw)
	rw.Time = rw.Time.Truncate(time.Microsecond)
	if err := s.AppendReceivedWebhook(ctx, ws.ID, rw); err != nil {
		t.Fatal(err)
	}
	rws, err := s.ListReceivedWebhooks(ctx, ws.ID, 1)
	if err != nil || len(rws) != 1 {
		t.Fatal(rws, err)
	}
	equal(t, "ReceivedWebhook", rws[0], rw)
}
