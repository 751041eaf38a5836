package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

// The SAML sign-in's composite operations (storage.SignIns). The keys
// involved live in up to four hash slots (the global email index
// {accounts}, the account {acct:<id>}, the workspace {ws:<id>}, the
// session), so on a Redis Cluster no single script may touch them all.

// ReceiveResponse reads the workspace record and takes the temp value in
// one pipelined round trip (both keys are in the workspace's slot).
func (s *Store) ReceiveResponse(ctx context.Context, ws, requestKey string) (storage.Received, error) {
	if !validWS(ws) {
		return storage.Received{}, storage.ErrNotFound
	}
	var meta, take *redis.StringCmd
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		meta = p.Get(ctx, s.wsKey(ws, "meta"))
		if requestKey != "" {
			take = p.GetDel(ctx, s.wsKey(ws, "tmp:"+requestKey))
		}
		return nil
	})
	rec, err := meta.Result()
	if err != nil {
		return storage.Received{}, s.wrap(err)
	}
	w, err := decodeWorkspaceCached(rec)
	if err != nil {
		return storage.Received{}, err
	}
	out := storage.Received{Workspace: w}
	if take != nil {
		b, err := take.Bytes()
		if err != nil && !errors.Is(err, redis.Nil) {
			return storage.Received{}, s.wrap(err)
		}
		out.Request = b
	}
	return out, nil
}

// AcceptLogin consumes the key and reads the email index in one pipelined
// round trip, then, for a new key and a known email, the account and its
// membership in another (loginMember).
func (s *Store) AcceptLogin(ctx context.Context, ws string, once storage.Once, email string) (storage.Login, error) {
	if !validWS(ws) {
		return storage.Login{}, errors.New("redisstore: invalid workspace id")
	}
	keys, args := []string{s.onceKey(ws, once.Key)}, []any{storage.NewID(), onceExpiry(once.Until).UnixMilli()}
	field := storage.FoldKey(email)
	var consume *redis.Cmd
	var index *redis.StringCmd
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		consume = scriptConsumeOnce.EvalSha(ctx, p, keys, args...)
		if field != "" {
			index = p.HGet(ctx, s.emailIndexKey(), field)
		}
		return nil
	})
	first, err := s.pipelinedScript(ctx, consume, scriptConsumeOnce, keys, args...).Int()
	if err != nil {
		return storage.Login{}, s.wrap(err)
	}
	if first != 1 {
		return storage.Login{Replayed: true}, nil
	}
	if index == nil {
		return storage.Login{}, storage.ErrNotFound
	}
	id, err := index.Result()
	if err != nil {
		return storage.Login{}, s.wrap(err)
	}
	return s.loginMember(ctx, ws, id)
}

// LoginLookup reads the email index (one round trip), then the account
// record and its membership in ws together (loginMember).
func (s *Store) LoginLookup(ctx context.Context, ws, email string) (storage.Login, error) {
	key := storage.FoldKey(email)
	if key == "" {
		return storage.Login{}, storage.ErrNotFound
	}
	id, err := s.rdb.HGet(ctx, s.emailIndexKey(), key).Result()
	if err != nil {
		return storage.Login{}, s.wrap(err)
	}
	return s.loginMember(ctx, ws, id)
}

// loginMember reads the account id (from the email index) and its
// membership in ws in one pipelined round trip.
func (s *Store) loginMember(ctx context.Context, ws, id string) (storage.Login, error) {
	if !validID(id) || !validWS(ws) {
		acct, err := s.accountOf(ctx, id)
		return storage.Login{Account: acct}, err
	}
	var acctCmd *redis.MapStringStringCmd
	var userCmd *redis.Cmd
	keys, argv := s.queryArgs(ws, false, "acct", id)
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		acctCmd = p.HGetAll(ctx, s.acctKey(id, "a"))
		userCmd = scriptUserQuery.EvalSha(ctx, p, keys, argv...)
		return nil
	})
	f, err := acctCmd.Result()
	if err != nil {
		return storage.Login{}, s.wrap(err)
	}
	acct, err := decodeAccount(id, f)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Login{}, fmt.Errorf("%w: email index -> account %s", errDangling, id)
	}
	if err != nil {
		return storage.Login{}, err
	}
	res, err := s.pipelinedScript(ctx, userCmd, scriptUserQuery, keys, argv...).Slice()
	if err != nil {
		return storage.Login{}, s.wrap(err)
	}
	// {total, record, seq}: at most one membership per account and workspace.
	if len(res) < 3 {
		return storage.Login{Account: acct}, nil
	}
	rec, _ := res[1].(string)
	u, err := decodeUser(ws, rec)
	if err != nil {
		return storage.Login{}, err
	}
	return storage.Login{Account: acct, Member: true, User: u}, nil
}

// StartSession stores the session and appends the events in one round
// trip: a MULTI/EXEC transaction where every key is on one server; a plain
// pipeline on a Cluster (a transaction cannot span slots there).
func (s *Store) StartSession(ctx context.Context, x storage.Session, events ...storage.Event) error {
	if len(events) == 0 {
		return s.CreateSession(ctx, x)
	}
	b, err := s.sessionRecord(&x)
	if err != nil {
		return err
	}
	ws := x.ActiveWorkspace
	out, pairs, err := s.eventsArgs(ws, events)
	if err != nil {
		return err
	}
	keys, args := append([]string{s.wsKey(ws, "meta")}, s.eventKeys(ws)...), eventArgs(pairs)
	var set *redis.StatusCmd
	var appended *redis.Cmd
	write := func(p redis.Pipeliner) error {
		set = p.SetArgs(ctx, s.sessionKey(x.Key), b, redis.SetArgs{ExpireAt: x.ExpiresAt})
		appended = scriptEventsAppend.EvalSha(ctx, p, keys, args...)
		return nil
	}
	if s.oneServer {
		_, _ = s.rdb.TxPipelined(ctx, write)
	} else {
		_, _ = s.rdb.Pipelined(ctx, write)
	}
	if err := set.Err(); err != nil {
		return s.wrap(err)
	}
	res, err := s.pipelinedScript(ctx, appended, scriptEventsAppend, keys, args...).Slice()
	if err != nil {
		return s.wrap(err)
	}
	_, err = eventsResult(out, res)
	return err
}

// pipelinedScript is the answer of script sent by EvalSha in a pipeline:
// a server that does not have the script yet (first use, or after SCRIPT
// FLUSH) answers NOSCRIPT without running it, and it is then sent whole
// (EVAL, which also loads it).
func (s *Store) pipelinedScript(ctx context.Context, cmd *redis.Cmd, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		return script.Eval(ctx, s.rdb, keys, args...)
	}
	return cmd
}

// CreateJITUser writes a JIT first sign-in. Where every key is on one
// server (a single server or Sentinel) it is one atomic script,
// scriptJITCreate: one round trip, and nothing in between for a crash to
// split. On a Cluster it is the same steps in order (createJITSteps).
func (s *Store) CreateJITUser(ctx context.Context, ws string, j storage.JITUser) (storage.JITUser, error) {
	p, err := s.planJIT(ws, j)
	if err != nil {
		return storage.JITUser{}, err
	}
	if !s.oneServer {
		return s.createJITSteps(ctx, ws, p)
	}
	res, err := scriptJITCreate.Run(ctx, s.rdb, p.keys(s, ws), p.args()...).Slice()
	if err != nil {
		err = s.wrap(err)
		var conflict *storage.ConflictError
		if errors.As(err, &conflict) {
			// The membership was refused after the account was written.
			return storage.JITUser{Account: p.j.Account}, err
		}
		return storage.JITUser{}, err
	}
	switch tag, _ := res[0].(int64); tag {
	case -1:
		return storage.JITUser{}, &storage.ConflictError{Field: "email"}
	case 0:
		return storage.JITUser{}, &storage.ConflictError{Field: "id"}
	}
	return p.result(res)
}

// jitPlan is a prepared CreateJITUser: j with its ids, times and event
// details filled in, and the encoded records.
type jitPlan struct {
	j        storage.JITUser
	emailKey string // the email index field
	user     string // the membership record
	session  []byte
	events   []any // the events' stream and record pairs (eventsArgs)
}

func (s *Store) planJIT(ws string, j storage.JITUser) (*jitPlan, error) {
	if !validWS(ws) {
		return nil, storage.ErrNotFound
	}
	a, key, err := prepareAccount(j.Account)
	if err != nil {
		return nil, err
	}
	j.Account = a
	u := j.User
	if u.ID == "" {
		u.ID = storage.NewID()
	}
	if !validID(u.ID) {
		return nil, fmt.Errorf("redisstore: invalid user id %q", u.ID)
	}
	if u.Created.IsZero() {
		u.Created = now()
	}
	u.AccountID, u.WorkspaceID = a.ID, ws
	u.Created = fromMicro(toMicro(u.Created))
	u.Modified, u.Version = u.Created, 1
	j.User = u
	j.Session.AccountID = a.ID
	events := make([]storage.Event, len(j.Events))
	for i, e := range j.Events {
		if e.AccountID == "" {
			e.AccountID = a.ID
		}
		if e.UserID == "" {
			e.UserID = u.ID
		}
		events[i] = e
	}
	p := &jitPlan{emailKey: key}
	if p.user, err = encodeUser(u); err != nil {
		return nil, err
	}
	if p.session, err = s.sessionRecord(&j.Session); err != nil {
		return nil, err
	}
	if j.Events, p.events, err = s.eventsArgs(ws, events); err != nil {
		return nil, err
	}
	p.j = j
	return p, nil
}

// keys are scriptJITCreate's KEYS.
func (p *jitPlan) keys(s *Store, ws string) []string {
	keys := append(s.userKeys(ws), s.acctKey(p.j.Account.ID, "a"), s.emailIndexKey(), s.sessionKey(p.j.Session.Key))
	return append(keys, s.eventKeys(ws)...)
}

// args are scriptJITCreate's ARGV.
func (p *jitPlan) args() []any {
	a := p.j.Account
	args := accountArgs(a, acctWSPrefix+p.j.User.WorkspaceID)
	args = append(args, p.emailKey, a.ID, p.session, p.j.Session.ExpiresAt.UnixMilli())
	args = append(args, eventArgs(p.events)...)
	return append(args, userArgs(p.j.User, p.user)...)
}

// result is the created sign-in, with the events' ids from the script's
// reply (none for a re-sent sign-in, whose events were written by the
// first send).
func (p *jitPlan) result(res []any) (storage.JITUser, error) {
	j := p.j
	events, err := eventsResult(append([]storage.Event(nil), j.Events...), res)
	if err != nil {
		return storage.JITUser{}, err
	}
	j.Events = events
	return j, nil
}

// createJITSteps is CreateJITUser on a Cluster, in ordered steps that are
// each safe to re-send: the workspace is checked (a sign-in to a missing
// one writes nothing), the account is published (publishAccount, which
// removes an account whose email was taken meanwhile), the membership is
// created with the events (one script: same slot), then the session is
// written.
func (s *Store) createJITSteps(ctx context.Context, ws string, p *jitPlan) (storage.JITUser, error) {
	if n, err := s.rdb.Exists(ctx, s.wsKey(ws, "meta")).Result(); err != nil {
		return storage.JITUser{}, s.wrap(err)
	} else if n == 0 {
		return storage.JITUser{}, storage.ErrNotFound
	}
	owner, err := s.publishAccount(ctx, p.j.Account, p.emailKey, acctWSPrefix+ws)
	if err != nil {
		return storage.JITUser{}, err
	}
	if owner != p.j.Account.ID {
		return storage.JITUser{}, &storage.ConflictError{Field: "email"}
	}
	res, err := s.createUser(ctx, ws, p.j.User, p.user, p.events)
	if err != nil {
		var conflict *storage.ConflictError
		if errors.As(err, &conflict) {
			return storage.JITUser{Account: p.j.Account}, err
		}
		return storage.JITUser{}, err
	}
	err = s.rdb.SetArgs(ctx, s.sessionKey(p.j.Session.Key), p.session, redis.SetArgs{ExpireAt: p.j.Session.ExpiresAt}).Err()
	if err != nil {
		return storage.JITUser{}, s.wrap(err)
	}
	return p.result(res)
}
