package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// fill writes one of every record type into workspace ws.
func fill(t *testing.T, s storage.Store, ws string) storage.Account {
	t.Helper()
	ctx := context.Background()
	if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: ws, Name: ws,
		Settings: storage.Settings{Login: storage.LoginSettings{EmailDomains: []string{ws + ".example"}}}}); err != nil {
		t.Fatal(err)
	}
	a, _, err := s.GetOrCreateAccount(ctx, storage.Account{Email: "p@" + ws + ".example"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, ws, storage.User{AccountID: a.ID, UserName: "p@" + ws + ".example", ExternalID: "x1",
		Emails: []string{"p@" + ws + ".example"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateGroup(ctx, ws, storage.Group{DisplayName: "g", ExternalID: "gx", Members: []string{u.ID}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSCIMToken(ctx, ws, storage.SCIMToken{ID: "t", Hash: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSCIMToken(ctx, ws, "t", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordSCIMError(ctx, ws, storage.SCIMRequestError{Method: "GET", Route: "/Users/:id", Status: 404}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvents(ctx, ws, storage.Event{Type: "x"}, storage.Event{Type: "scim.user.updated"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutTemp(ctx, ws, "relay", []byte("r"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeOnce(ctx, ws, "assertion", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateVerification(ctx, storage.Verification{TokenHash: "h", AccountID: a.ID, WorkspaceID: ws,
		ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, storage.Session{Key: "s-" + ws, AccountID: a.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvents(ctx, ws, storage.Event{Type: "login.refused"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Allow(ctx, storage.Limit{Key: "issue:" + a.ID, Rate: storage.Rate{Limit: 5, Period: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	m, err := s.AppendMail(ctx, storage.Mail{To: a.Email, Subject: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendReceivedWebhook(ctx, ws, storage.ReceivedWebhook{ID: "msg_1", Type: "user.created", Verified: true}); err != nil {
		t.Fatal(err)
	}
	wh, err := s.CreateWebhook(ctx, ws, storage.Webhook{URL: "https://a.example/hook", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvents(ctx, ws, storage.Event{Type: "scim.user.updated"}); err != nil { // to the outbox
		t.Fatal(err)
	}
	if err := s.AppendWebhookAttempt(ctx, ws, wh.ID, storage.WebhookAttempt{Time: time.Now(), Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMailAttempt(ctx, m.ID, storage.MailAttempt{Time: time.Now(), Outcome: "sent"}, "sent", ""); err != nil {
		t.Fatal(err)
	}
	return a
}

// hashTag is the part of key Redis Cluster hashes: the content of the
// first {...} when it is non-empty, else the whole key.
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

// TestKeyLayoutOneSlotPerWorkspace lists every key the store wrote (KEYS on a
// throwaway server, in this test only) and checks that each workspace's keys, and each
// account's, share one Cluster hash slot as the server computes it, and
// that no key falls outside the documented layout.
func TestKeyLayoutOneSlotPerWorkspace(t *testing.T) {
	ctx := context.Background()
	cl := redistest.StartCluster(t, 1)
	c := redis.NewClusterClient(cl.Options())
	s := redisstore.New(c, "sj")
	t.Cleanup(func() { _ = s.Close() })
	accts := map[string]storage.Account{}
	for _, ws := range []string{"finance", "legal"} {
		accts[ws] = fill(t, s, ws)
	}
	node := redis.NewClient(cl.Node(0).Options())
	defer node.Close()
	keys, err := node.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slots := map[string]map[int64]bool{} // tag -> slots seen
	for _, k := range keys {
		if !strings.HasPrefix(k, "sj:") {
			t.Errorf("key %q lacks the prefix", k)
		}
		tag := hashTag(k)
		switch {
		case strings.HasPrefix(k, "sj:{ws:"), strings.HasPrefix(k, "sj:{acct:"):
		case k == "sj:{registry}:workspaces", k == "sj:{registry}:domains", k == "sj:{registry}:webhooks", k == "sj:{accounts}:email", strings.HasPrefix(k, "sj:{mail}:"):
		case strings.HasPrefix(k, "sj:{rl}:"): // the rate limits, checked together
		case strings.HasPrefix(k, "sj:sess:"):
			continue // single-key records: their slot does not matter
		default:
			t.Errorf("key %q is not in the documented layout", k)
			continue
		}
		slot, err := node.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if slots[tag] == nil {
			slots[tag] = map[int64]bool{}
		}
		slots[tag][slot] = true
	}
	for _, ws := range []string{"finance", "legal"} {
		tag := "ws:" + ws
		n := 0
		for _, k := range keys {
			if strings.Contains(k, "{"+tag+"}") {
				n++
				if hashTag(k) != tag {
					t.Errorf("key %q mentions %s but hashes on %q", k, tag, hashTag(k))
				}
			}
		}
		if n < 10 {
			t.Errorf("only %d keys for %s; the fill did not reach every record type", n, tag)
		}
		if len(slots[tag]) != 1 {
			t.Errorf("workspace %s spans slots %v", ws, slots[tag])
		}
		if at := "acct:" + accts[ws].ID; len(slots[at]) != 1 {
			t.Errorf("account %s spans slots %v", accts[ws].ID, slots[at])
		}
	}

	// Deleting a workspace leaves only its self-expiring keys.
	if err := s.DeleteWorkspace(ctx, "finance"); err != nil {
		t.Fatal(err)
	}
	left, err := node.Keys(ctx, "*{ws:finance}*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range left {
		ttl, err := node.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 {
			t.Errorf("after DeleteWorkspace key %q remains without a TTL", k)
		}
	}
	ms, err := s.AccountMemberships(ctx, accts["finance"].ID)
	if err != nil || len(ms) != 0 {
		t.Errorf("memberships after workspace delete = %v, %v", ms, err)
	}
	if n, _ := node.HLen(ctx, "sj:{acct:"+accts["finance"].ID+"}:a").Result(); n != 6 {
		t.Errorf("account hash has %d fields, want the 6 of the record without back-pointers", n)
	}
}
