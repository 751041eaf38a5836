package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

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

// BenchmarkCreateUserMemory creates 10,000 typical Okta memberships (each
// with its own account, and the name of the SCIM request that created it)
// on a real redis-server and reports Redis memory
// per user: the workspace's keys (record and every index) by MEMORY
// USAGE, the account side (record, email index entry, back-pointers),
// and the used_memory growth. The timed loop measures CreateUser.
func BenchmarkCreateUserMemory(b *testing.B) {
	ctx := context.Background()
	srv := redistest.Start(b)
	s, err := redisstore.Open(ctx, redisstore.Options{URL: srv.URL()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := redis.NewClient(srv.Options())
	defer c.Close()
	if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "mem", Name: "mem"}); err != nil {
		b.Fatal(err)
	}
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
