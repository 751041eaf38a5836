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

// GetOrCreateAccount returns the account with a.Email or creates it. The
// common case, a known email, only reads.
func (s *Store) GetOrCreateAccount(ctx context.Context, a storage.Account) (storage.Account, bool, error) {
	a, key, err := prepareAccount(a)
	if err != nil {
		return storage.Account{}, false, err
	}
	if existing, err := s.GetAccountByEmail(ctx, key); err == nil {
		return existing, false, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return storage.Account{}, false, err
	}
	owner, err := s.publishAccount(ctx, a, key, "")
	if err != nil {
		return storage.Account{}, false, err
	}
	if owner == a.ID {
		return a, true, nil
	}
	existing, err := s.accountOf(ctx, owner)
	return existing, false, err
}

// prepareAccount fills a's id and creation time and returns the email
// index field of its email.
func prepareAccount(a storage.Account) (storage.Account, string, error) {
	key := storage.FoldKey(a.Email)
	if key == "" {
		return a, "", errors.New("redisstore: account email is empty")
	}
	if a.ID == "" {
		a.ID = storage.NewID()
	}
	if !validID(a.ID) {
		return a, "", fmt.Errorf("redisstore: invalid account id %q", a.ID)
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now()
	}
	a.CreatedAt = fromMicro(toMicro(a.CreatedAt))
	return a, key, nil
}

// accountArgs are luaWriteAccount's arguments for a (backPointer: the
// membership back-pointer field to write with it, or "").
func accountArgs(a storage.Account, backPointer string) []any {
	return []any{a.Email, a.FullName, a.Source, a.OriginWorkspace, toMicro(a.CreatedAt), backPointer}
}

// publishAccount creates account a in two ordered steps, on two hash
// slots: (1) the record under its new id (with the back-pointer field,
// when given), reachable by nobody yet; (2) HSETNX on the email index
// publishes it, deciding among concurrent creates of one email. It
// returns the id the index holds for the email: a.ID when a won (or had
// already won: a re-sent call), another account's id when a lost. A
// loser deletes its unpublished record, after reading that the index
// holds the other id, so nothing an index points to is ever deleted. A
// crash or a lost connection after (1) leaves at most an unreachable
// record (scimjit check finds it); re-sending the same a, id and creation
// time included, completes the create.
func (s *Store) publishAccount(ctx context.Context, a storage.Account, key, backPointer string) (string, error) {
	recKey := s.acctKey(a.ID, "a")
	w, err := scriptAccountWrite.Run(ctx, s.rdb, []string{recKey}, accountArgs(a, backPointer)...).Text()
	if err != nil {
		return "", s.wrap(err)
	}
	if w == "taken" {
		return "", &storage.ConflictError{Field: "id"}
	}
	won, err := s.rdb.HSetNX(ctx, s.emailIndexKey(), key, a.ID).Result()
	if err != nil {
		return "", s.wrap(err)
	}
	if won {
		return a.ID, nil
	}
	owner, err := s.rdb.HGet(ctx, s.emailIndexKey(), key).Result()
	if err != nil {
		return "", s.wrap(err)
	}
	if owner == a.ID {
		return owner, nil
	}
	// The index holds another account: ours was never published.
	if err := s.rdb.Del(ctx, recKey).Err(); err != nil {
		return "", s.wrap(err)
	}
	return owner, nil
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

// GetAccountByEmail looks the email up (folded: storage.FoldKey) in the
// index.
func (s *Store) GetAccountByEmail(ctx context.Context, email string) (storage.Account, error) {
	key := storage.FoldKey(email)
	if key == "" {
		return storage.Account{}, storage.ErrNotFound
	}
	id, err := s.rdb.HGet(ctx, s.emailIndexKey(), key).Result()
	if err != nil {
		return storage.Account{}, s.wrap(err)
	}
	return s.accountOf(ctx, id)
}

// errDangling is an index entry that points to a record that does not
// exist. The writes never leave one (an account is published only once
// its record is complete, and never deleted); scimjit check reports and
// repairs one left by older versions.
var errDangling = errors.New("redisstore: an index entry points to a missing record (run scimjit check)")

// accountOf reads the account an index entry names: a missing record is
// errDangling, not ErrNotFound, since the email does have an owner.
func (s *Store) accountOf(ctx context.Context, id string) (storage.Account, error) {
	a, err := s.GetAccount(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Account{}, fmt.Errorf("%w: email index -> account %s", errDangling, id)
	}
	return a, err
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
