package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// oktaUser is what a typical Okta SCIM push leaves in a membership.
func oktaUser(i int, accountID string) storage.User {
	email := fmt.Sprintf("firstname.lastname%05d@example.com", i)
	return storage.User{
		AccountID:  accountID,
		UserName:   email,
		ExternalID: fmt.Sprintf("00u%017d", i),
		Emails:     []string{email},
		Active:     true,
		Verified:   true,
		Source:     storage.SourceSCIM,
		Roles:      storage.Roles{Dev: storage.RoleOperator, Test: storage.RoleOperator, Prod: storage.RoleOperator},
		Attributes: map[string]any{
			"name":        map[string]any{"givenName": "Firstname", "familyName": fmt.Sprintf("Lastname%05d", i)},
			"displayName": fmt.Sprintf("Firstname Lastname%05d", i),
			"locale":      "en-US",
			"emails":      []any{map[string]any{"primary": true, "value": email, "type": "work"}},
		},
	}
}

func usedMemory(ctx context.Context, b *testing.B, c *redis.Client) int64 {
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}

// keyBytes sums MEMORY USAGE (all samples) over the keys matching pattern.
func keyBytes(ctx context.Context, b *testing.B, c *redis.Client, pattern string) int64 {
	var total int64
	iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		n, err := c.MemoryUsage(ctx, iter.Val(), 0).Result()
		if err != nil {
			b.Fatal(err)
		}
		total += n
	}
	if err := iter.Err(); err != nil {
		b.Fatal(err)
	}
	return total
}

// memoryStore is a store on a redis-server of its own with workspace
// "mem", and a plain client of that server to measure it.
func memoryStore(b *testing.B) (*redisstore.Store, *redis.Client) {
	ctx := context.Background()
	srv := redistest.Start(b)
	s, err := redisstore.Open(ctx, redisstore.Options{URL: srv.URL()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	c := redis.NewClient(srv.Options())
	b.Cleanup(func() { _ = c.Close() })
	if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "mem", Name: "mem"}); err != nil {
		b.Fatal(err)
	}
	return s, c
}

// BenchmarkCreateUserMemory creates 10,000 typical Okta memberships (each
// with its own account, and the name of the SCIM request that created it)
// on a real redis-server and reports Redis memory
// per user: the workspace's keys (record and every index) by MEMORY
// USAGE, the account side (record, email index entry, back-pointers),
// and the used_memory growth. The timed loop measures CreateUser.
func BenchmarkCreateUserMemory(b *testing.B) {
	ctx := context.Background()
	s, c := memoryStore(b)
	const n = 10000
	before := usedMemory(ctx, b, c)
	for i := 0; i < n; i++ {
		a, _, err := s.GetOrCreateAccount(ctx, storage.Account{Email: fmt.Sprintf("firstname.lastname%05d@example.com", i),
			FullName: "Firstname Lastname", Source: storage.SourceSCIM, OriginWorkspace: "mem"})
		if err != nil {
			b.Fatal(err)
		}
		u := oktaUser(i, a.ID)
		u.Op = storage.NewID()[:16] // 16 random characters, as a SCIM create names itself
		if _, err := s.CreateUser(ctx, "mem", u); err != nil {
			b.Fatal(err)
		}
	}
	after := usedMemory(ctx, b, c)
	ws := keyBytes(ctx, b, c, "sj:{ws:mem}:*")
	acct := keyBytes(ctx, b, c, "sj:{acct:*") + keyBytes(ctx, b, c, "sj:{accounts}:*")

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.CreateUser(ctx, "mem", storage.User{UserName: fmt.Sprintf("bench%d@example.com", i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// ReportMetric after ResetTimer, which would discard them.
	b.ReportMetric(float64(ws)/n, "ws-B/user")
	b.ReportMetric(float64(acct)/n, "acct-B/user")
	b.ReportMetric(float64(after-before)/n, "used-B/user")
}

// BenchmarkSizingMemory reports the Redis memory (used_memory growth) of
// what grows besides users, for sizing: a live browser session, a sign-in
// event (login.succeeded with the email, as the ACS writes it), and a
// group membership (the member set entry and the user's reverse-index
// entry), each averaged over 10,000 on a real redis-server. The timed loop
// measures StartSession with its event.
func BenchmarkSizingMemory(b *testing.B) {
	ctx := context.Background()
	s, c := memoryStore(b)
	const n = 10000
	exp := time.Now().Add(12 * time.Hour)
	per := func(f func(i int) error) float64 {
		before := usedMemory(ctx, b, c)
		for i := 0; i < n; i++ {
			if err := f(i); err != nil {
				b.Fatal(err)
			}
		}
		return float64(usedMemory(ctx, b, c)-before) / n
	}
	session := per(func(i int) error {
		return s.CreateSession(ctx, storage.Session{Key: fmt.Sprintf("%064x", i), AccountID: storage.NewID(),
			ActiveWorkspace: "mem", CreatedAt: time.Now(), ExpiresAt: exp})
	})
	event := per(func(i int) error {
		_, err := s.AppendEvents(ctx, "mem", storage.Event{Type: "login.succeeded", Actor: "saml", UserID: storage.NewID(),
			AccountID: storage.NewID(), Detail: map[string]string{"email": fmt.Sprintf("firstname.lastname%05d@example.com", i)}})
		return err
	})
	users := make([]string, n)
	for i := range users {
		u, err := s.CreateUser(ctx, "mem", storage.User{UserName: fmt.Sprintf("member%05d@example.com", i)})
		if err != nil {
			b.Fatal(err)
		}
		users[i] = u.ID
	}
	groups := make([]string, 10)
	for i := range groups {
		g, err := s.CreateGroup(ctx, "mem", storage.Group{DisplayName: fmt.Sprintf("group %d", i)})
		if err != nil {
			b.Fatal(err)
		}
		groups[i] = g.ID
	}
	membership := per(func(i int) error {
		_, err := s.ChangeGroup(ctx, "mem", groups[i%len(groups)], storage.GroupChange{AddMembers: []string{users[i]}})
		return err
	})

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.StartSession(ctx, storage.Session{Key: fmt.Sprintf("b%063x", i), AccountID: "a", ActiveWorkspace: "mem",
			ExpiresAt: exp}, storage.Event{Type: "login.succeeded", Actor: "saml"}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(session, "session-B")
	b.ReportMetric(event, "event-B")
	b.ReportMetric(membership, "group-member-B")
}
