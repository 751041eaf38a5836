package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

// An account is one small hash, {acct:<id>}:a, so that Redis keeps it in
// the compact listpack encoding: the record's fields (v wire version, e
// email as sent, n full name, s source, o origin workspace, c created µs)
// and one field w:<workspace> per membership back-pointer.
const (
	acctFieldVersion = "v"
	acctFieldEmail   = "e"
	acctFieldName    = "n"
	acctFieldSource  = "s"
	acctFieldOrigin  = "o"
	acctFieldCreated = "c"
	acctWSPrefix     = "w:"
)

func decodeAccount(id string, f map[string]string) (storage.Account, error) {
	if len(f) == 0 || f[acctFieldVersion] == "" {
		return storage.Account{}, storage.ErrNotFound // back-pointers only: never published
	}
	if f[acctFieldVersion] != "1" {
		return storage.Account{}, fmt.Errorf("redisstore: account record version %q unknown", f[acctFieldVersion])
	}
	c, _ := strconv.ParseInt(f[acctFieldCreated], 10, 64)
	return storage.Account{ID: id, Email: f[acctFieldEmail], FullName: f[acctFieldName], Source: f[acctFieldSource],
		OriginWorkspace: f[acctFieldOrigin], CreatedAt: fromMicro(c)}, nil
}

// CreateAccount stores a new account; the email index decides.
func (s *Store) CreateAccount(ctx context.Context, a storage.Account) (storage.Account, error) {
	acct, created, err := s.createAccount(ctx, a)
	if err != nil {
		return storage.Account{}, err
	}
	if !created {
		return storage.Account{}, &storage.ConflictError{Field: "email"}
	}
	return acct, nil
}

// GetOrCreateAccount returns the account with a.Email or creates it.
func (s *Store) GetOrCreateAccount(ctx context.Context, a storage.Account) (storage.Account, bool, error) {
	return s.createAccount(ctx, a)
}

// createAccount crosses two slots and is ordered so that nothing is visible
// half-done: (1) the record is written under its own new id (HSETNX of the
// version field decides an id collision), reachable by nobody yet; (2) HSETNX on the global email index publishes it, atomically
// deciding the winner among concurrent creates of one email; (3) a loser
// deletes its unpublished record and returns the winner's. A crash after
// (1) leaves an unreachable record, never a half-created account.
func (s *Store) createAccount(ctx context.Context, a storage.Account) (storage.Account, bool, error) {
	email := strings.ToLower(strings.TrimSpace(a.Email))
	if email == "" {
		return storage.Account{}, false, errors.New("redisstore: account email is empty")
	}
	if a.ID == "" {
		a.ID = storage.NewID()
	}
	if !validID(a.ID) {
		return storage.Account{}, false, fmt.Errorf("redisstore: invalid account id %q", a.ID)
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now()
	}
	a.CreatedAt = fromMicro(toMicro(a.CreatedAt))
	// Cheap read first: the common GetOrCreate of a known email writes nothing.
	if existing, err := s.GetAccountByEmail(ctx, email); err == nil {
		return existing, false, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return storage.Account{}, false, err
	}
	recKey := s.acctKey(a.ID, "a")
	ok, err := scriptAccountCreate.Run(ctx, s.rdb, []string{recKey}, a.Email, a.FullName, a.Source,
		a.OriginWorkspace, toMicro(a.CreatedAt)).Bool()
	if err != nil {
		return storage.Account{}, false, s.wrap(err)
	}
	if !ok {
		return storage.Account{}, false, &storage.ConflictError{Field: "id"}
	}
	won, err := s.rdb.HSetNX(ctx, s.emailIndexKey(), email, a.ID).Result()
	if err != nil {
		return storage.Account{}, false, s.wrap(err)
	}
	if won {
		return a, true, nil
	}
	if err := s.rdb.HDel(ctx, recKey, acctFieldVersion, acctFieldEmail, acctFieldName, acctFieldSource,
		acctFieldOrigin, acctFieldCreated).Err(); err != nil {
		return storage.Account{}, false, s.wrap(err)
	}
	existing, err := s.GetAccountByEmail(ctx, email)
	if err != nil {
		return storage.Account{}, false, err
	}
	return existing, false, nil
}

// GetAccount reads an account by id.
func (s *Store) GetAccount(ctx context.Context, id string) (storage.Account, error) {
	if !validID(id) {
		return storage.Account{}, storage.ErrNotFound
	}
	f, err := s.rdb.HGetAll(ctx, s.acctKey(id, "a")).Result()
	if err != nil {
		return storage.Account{}, s.wrap(err)
	}
	return decodeAccount(id, f)
}

// GetAccountByEmail looks the email up (case-insensitively) in the index.
func (s *Store) GetAccountByEmail(ctx context.Context, email string) (storage.Account, error) {
	id, err := s.rdb.HGet(ctx, s.emailIndexKey(), strings.ToLower(strings.TrimSpace(email))).Result()
	if err != nil {
		return storage.Account{}, s.wrap(err)
	}
	return s.GetAccount(ctx, id)
}

// AccountMemberships reads the account's w:<ws> back-pointers and verifies
// each against the workspace's account index (a back-pointer is written
// before its membership and may be stale; see docs/storage.md). Ordered by
// workspace id.
func (s *Store) AccountMemberships(ctx context.Context, accountID string) ([]storage.MembershipRef, error) {
	if !validID(accountID) {
		return []storage.MembershipRef{}, nil
	}
	fields, err := s.rdb.HKeys(ctx, s.acctKey(accountID, "a")).Result()
	if err != nil {
		return nil, s.wrap(err)
	}
	var wss []string
	for _, f := range fields {
		if ws, ok := strings.CutPrefix(f, acctWSPrefix); ok && validWS(ws) {
			wss = append(wss, ws)
		}
	}
	sort.Strings(wss)
	out := []storage.MembershipRef{}
	if len(wss) == 0 {
		return out, nil
	}
	cmds := make([]*redis.StringCmd, len(wss))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, ws := range wss {
			cmds[i] = p.HGet(ctx, s.wsKey(ws, "ix:ua"), accountID)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.wrap(err)
	}
	for i, c := range cmds {
		uid, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, storage.MembershipRef{WorkspaceID: wss[i], UserID: uid})
	}
	return out, nil
}
