package redisstore

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

// The email-domain index (key {registry}:domains) maps each domain that a
// workspace's login.emailDomains lists to the workspace: one sorted set,
// all scores 0, whose members are "<domain> <workspace id>" (neither
// contains a space), so the workspaces of one domain are one ZRANGE BYLEX.
// It lives in the registry's slot, apart from the workspace records, so it
// cannot change in the same transaction as a record: the record is the
// authority, the index is brought in step after every write, and readers
// keep only the workspaces whose record still lists the domain.

// domainMember is the index member for (domain, workspace).
func domainMember(domain, ws string) string { return domain + " " + ws }

// syncDomainIndex brings workspace id's index entries in step with its
// record: it removes stale (the domains the record listed before the write
// that calls it) except those the record lists now, and adds the current
// ones. A concurrent write of the same workspace may have read the record
// in between, so it repeats until the record's version did not change
// while it worked: the last writer's domains are always in the index.
func (s *Store) syncDomainIndex(ctx context.Context, id string, stale []string) error {
	key := s.domainIndexKey()
	for i := 0; i < maxRetries; i++ {
		cur, ver, err := s.currentDomains(ctx, id)
		if err != nil {
			return err
		}
		_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, d := range stale {
				if !slices.Contains(cur, d) {
					p.ZRem(ctx, key, domainMember(d, id))
				}
			}
			for _, d := range cur {
				p.ZAdd(ctx, key, redis.Z{Member: domainMember(d, id)})
			}
			return nil
		})
		if err != nil {
			return s.wrap(err)
		}
		_, again, err := s.currentDomains(ctx, id)
		if err != nil {
			return err
		}
		if again == ver {
			return nil
		}
		stale = append(stale, cur...)
	}
	return storage.ErrConflictRetries
}

// currentDomains reads the workspace's record: its email domains and its
// version (0 when the workspace does not exist).
func (s *Store) currentDomains(ctx context.Context, id string) ([]string, int64, error) {
	rec, err := s.rdb.Get(ctx, s.wsKey(id, "meta")).Result()
	if errors.Is(err, redis.Nil) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, s.wrap(err)
	}
	w, err := decodeWorkspaceCached(rec)
	if err != nil {
		return nil, 0, err
	}
	return w.Settings.Login.EmailDomains, w.Version, nil
}

// WorkspacesByEmailDomain reads the index entries of domain, then each
// workspace record (pipelined), and keeps the workspaces whose record
// lists the domain.
func (s *Store) WorkspacesByEmailDomain(ctx context.Context, domain string) ([]storage.Workspace, error) {
	out := []storage.Workspace{}
	if domain == "" || strings.ContainsAny(domain, " {}\x00") {
		return out, nil
	}
	members, err := s.rdb.ZRangeByLex(ctx, s.domainIndexKey(), &redis.ZRangeBy{
		Min: "[" + domain + " ", Max: "(" + domain + "!"}).Result()
	if err != nil {
		return nil, s.wrap(err)
	}
	ids := make([]string, 0, len(members))
	for _, m := range members {
		if id := strings.TrimPrefix(m, domain+" "); validWS(id) {
			ids = append(ids, id)
		}
	}
	ws, err := s.readWorkspaces(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		if slices.Contains(w.Settings.Login.EmailDomains, domain) {
			out = append(out, w)
		}
	}
	// The members are sorted by "<domain> <id>", so out is in id order.
	return out, nil
}
