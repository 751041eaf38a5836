package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

// The SAML sign-in path in few round trips. The keys involved live in
// three hash slots (the global email index {accounts}, the account
// {acct:<id>}, the workspace {ws:<id>}), so no single script may touch them
// all on a Redis Cluster: each method below takes at most one round trip
// per dependent step, and pipelines the steps that do not depend on each
// other (a pipeline is one round trip on a single server; the Cluster
// client splits it per node).

// scriptAccountCreateMember: KEYS = account hash; ARGV = email, name,
// source, origin, created (µs), back-pointer field (w:<ws>). Like
// scriptAccountCreate, and writes the membership back-pointer in the same
// step (readers verify back-pointers, so one written early is harmless).
// Returns 1, or 0 when the id is taken.
var scriptAccountCreateMember = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'v') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', '1', 'e', ARGV[1], 'n', ARGV[2], 's', ARGV[3], 'o', ARGV[4], 'c', ARGV[5], ARGV[6], '1')
return 1
`)

// LoginLookup reads the email index (one round trip), then the account
// record and its membership in ws together (one pipelined round trip).
func (s *Store) LoginLookup(ctx context.Context, ws, email string) (storage.Account, storage.User, bool, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	if key == "" {
		return storage.Account{}, storage.User{}, false, storage.ErrNotFound
	}
	id, err := s.rdb.HGet(ctx, s.emailIndexKey(), key).Result()
	if err != nil {
		return storage.Account{}, storage.User{}, false, s.wrap(err)
	}
	if !validID(id) {
		return storage.Account{}, storage.User{}, false, storage.ErrNotFound
	}
	return s.loginLookupID(ctx, ws, id)
}

// loginLookupID is LoginLookup's second step: the account record id and
// its membership in ws, pipelined (one round trip).
func (s *Store) loginLookupID(ctx context.Context, ws, id string) (storage.Account, storage.User, bool, error) {
	if !validWS(ws) {
		acct, err := s.GetAccount(ctx, id)
		return acct, storage.User{}, false, err
	}
	var acctCmd *redis.MapStringStringCmd
	var userCmd *redis.Cmd
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		acctCmd = p.HGetAll(ctx, s.acctKey(id, "a"))
		keys, argv := s.queryArgs(ws, false, "acct", id)
		userCmd = scriptUserQuery.EvalSha(ctx, p, keys, argv...)
		return nil
	})
	f, err := acctCmd.Result()
	if err != nil {
		return storage.Account{}, storage.User{}, false, s.wrap(err)
	}
	acct, err := decodeAccount(id, f)
	if err != nil {
		return storage.Account{}, storage.User{}, false, err
	}
	res, err := userCmd.Slice()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// First use on this server (or after SCRIPT FLUSH): EVAL loads it.
		keys, argv := s.queryArgs(ws, false, "acct", id)
		res, err = scriptUserQuery.Run(ctx, s.rdb, keys, argv...).Slice()
	}
	if err != nil {
		return storage.Account{}, storage.User{}, false, s.wrap(err)
	}
	// {total, record, seq}: at most one membership per account and workspace.
	if len(res) < 3 {
		return acct, storage.User{}, false, nil
	}
	rec, _ := res[1].(string)
	u, err := decodeUser(ws, rec)
	if err != nil {
		return storage.Account{}, storage.User{}, false, err
	}
	return acct, u, true, nil
}

// ConsumeOnceAndLoginLookup sends ConsumeOnce's SET NX and LoginLookup's
// email-index HGET in one pipeline (different slots: one round trip on a
// single server, split per node by the Cluster client); only when the SET
// created the key (the first consumer, decided inside Redis across all
// processes) does it read the account and membership (LoginLookup's
// second step). The HGET only reads, so sending it before the outcome of
// the SET is known changes nothing for a refused (replayed) assertion.
func (s *Store) ConsumeOnceAndLoginLookup(ctx context.Context, ws, key string, expiresAt time.Time, email string) (bool, storage.Account, storage.User, bool, error, error) {
	if !validWS(ws) {
		return false, storage.Account{}, storage.User{}, false, nil, errors.New("redisstore: invalid workspace id")
	}
	emailKey := strings.ToLower(strings.TrimSpace(email))
	var setCmd *redis.StatusCmd
	var idCmd *redis.StringCmd
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		setCmd = p.SetArgs(ctx, s.onceKey(ws, key), "1", redis.SetArgs{Mode: "NX", ExpireAt: onceExpiry(expiresAt)})
		if emailKey != "" {
			idCmd = p.HGet(ctx, s.emailIndexKey(), emailKey)
		}
		return nil
	})
	if err := setCmd.Err(); err != nil {
		if errors.Is(err, redis.Nil) {
			return false, storage.Account{}, storage.User{}, false, nil, nil
		}
		return false, storage.Account{}, storage.User{}, false, nil, s.wrap(err)
	}
	if idCmd == nil {
		return true, storage.Account{}, storage.User{}, false, storage.ErrNotFound, nil
	}
	id, err := idCmd.Result()
	if err != nil {
		return true, storage.Account{}, storage.User{}, false, s.wrap(err), nil
	}
	if !validID(id) {
		return true, storage.Account{}, storage.User{}, false, storage.ErrNotFound, nil
	}
	acct, u, has, err := s.loginLookupID(ctx, ws, id)
	return true, acct, u, has, err, nil
}

// ConsumeOnceAndLoginLookupOrCreate: on a single server or Sentinel, when
// the creation's session and events encode, one script
// (scriptConsumeLookupCreate): the consume, the email look-up, and the
// creation when the email is unknown, so a JIT sign-in's consume and
// creation are one round trip; a known person's account and membership
// follow in a second, as in ConsumeOnceAndLoginLookup. Otherwise (a
// Cluster: the keys are in several slots) ConsumeOnceAndLoginLookup and
// then, when needed, CreateAccountAndUserWithSession.
func (s *Store) ConsumeOnceAndLoginLookupOrCreate(ctx context.Context, ws, key string, expiresAt time.Time, email string, create *storage.JITCreate) (storage.ConsumeLookup, error) {
	if create != nil && validWS(ws) && strings.ToLower(strings.TrimSpace(create.Account.Email)) == strings.ToLower(strings.TrimSpace(email)) {
		if _, cluster := s.rdb.(*redis.ClusterClient); !cluster {
			if r, err, done := s.consumeLookupCreate(ctx, ws, key, expiresAt, create); done {
				return r, err
			}
		}
	}
	var r storage.ConsumeLookup
	var err error
	r.First, r.Account, r.User, r.HasMember, r.LookErr, err = s.ConsumeOnceAndLoginLookup(ctx, ws, key, expiresAt, email)
	if err != nil || !r.First || create == nil || !errors.Is(r.LookErr, storage.ErrNotFound) {
		return r, err
	}
	r.Created = true
	r.JIT, r.CreateErr = s.CreateAccountAndUserWithSession(ctx, ws, create.Account, create.User, create.Session, create.Events)
	return r, nil
}

// consumeLookupCreate runs scriptConsumeLookupCreate; done is false when
// it did not run (the plan cannot be written by it, or the server refused
// a cross-slot script) and the caller must take the ordered path.
func (s *Store) consumeLookupCreate(ctx context.Context, ws, key string, expiresAt time.Time, c *storage.JITCreate) (r storage.ConsumeLookup, _ error, done bool) {
	p, err := s.planAccountUser(ws, c.Account, c.User, &signIn{sess: c.Session, events: c.Events})
	if err != nil || !p.inScript {
		return r, nil, false
	}
	keys := append(p.keys, s.onceKey(ws, key))
	res, err := scriptConsumeLookupCreate.Run(ctx, s.rdb, keys, append(p.argv, onceExpiry(expiresAt).UnixMilli())...).Slice()
	werr := s.wrap(err)
	var conflict *storage.ConflictError
	switch {
	case err != nil && redis.HasErrorPrefix(err, "CROSSSLOT"):
		return r, nil, false
	case errors.Is(werr, storage.ErrNotFound) || errors.As(werr, &conflict):
		// The creation's own refusal: the key was consumed and the email
		// was unknown.
		r = storage.ConsumeLookup{First: true, LookErr: storage.ErrNotFound, Created: true}
		r.JIT, r.CreateErr, _ = s.accountUserResult(ctx, ws, p, nil, err)
		return r, nil, true
	case err != nil:
		// Not known whether the script ran: the consume failed, as
		// ConsumeOnce's error.
		return r, werr, true
	}
	tag, _ := res[0].(int64)
	switch tag {
	case 0:
		return r, nil, true
	case 1:
		r.First = true
		id, _ := res[1].(string)
		if !validID(id) {
			r.LookErr = storage.ErrNotFound
			return r, nil, true
		}
		r.Account, r.User, r.HasMember, r.LookErr = s.loginLookupID(ctx, ws, id)
		return r, nil, true
	}
	r = storage.ConsumeLookup{First: true, LookErr: storage.ErrNotFound, Created: true}
	r.JIT, r.CreateErr, _ = s.accountUserResult(ctx, ws, p, res[1], nil)
	return r, nil, true
}

// CreateAccountAndUser is createAccount and CreateUser in one round trip
// on a single server or Sentinel (scriptAccountUserCreate, atomic) and
// three on a Cluster, in the same order: (1) the
// account record under its new id together with the membership
// back-pointer w:<ws>, reachable by nobody yet; (2) HSETNX on the email
// index publishes the account and decides among concurrent creates (a
// loser gets ConflictError "email" and leaves nothing visible); (3) the
// membership and its index entries in the user-create script, which
// checks every unique index first. On a single server or Sentinel the
// three steps are one script, so no crash falls between them and a loser
// of the email writes nothing; on a Cluster they are in different hash
// slots and run in order, a loser removing what it wrote in (1). There a
// crash before (2) leaves at most an unreachable record; after (2) an
// account without membership, which the next sign-in completes. The
// caller has just seen the email missing (LoginLookup), so there is no
// read first.
func (s *Store) CreateAccountAndUser(ctx context.Context, ws string, a storage.Account, u storage.User) (storage.Account, storage.User, error) {
	r, err := s.createAccountAndUser(ctx, ws, a, u, nil)
	return r.Account, r.User, err
}

// CreateAccountAndUserWithSession is CreateAccountAndUser and, once the
// membership exists, CreateSessionAndAppendEvents. On a single server or
// Sentinel the session and the events are written by the same script,
// after the membership and only when it was created (one round trip for
// the whole JIT sign-in); on a Cluster they follow in a second pipeline.
func (s *Store) CreateAccountAndUserWithSession(ctx context.Context, ws string, a storage.Account, u storage.User, sess storage.Session, events []storage.Event) (storage.JITSignIn, error) {
	return s.createAccountAndUser(ctx, ws, a, u, &signIn{sess: sess, events: events})
}

// signIn is the session and events createAccountAndUser writes after the
// membership.
type signIn struct {
	sess   storage.Session
	events []storage.Event
}

// accountUserPlan is a prepared CreateAccountAndUser(WithSession): the
// validated account and membership with their ids, the user-create
// arguments, and the keys and arguments of scriptAccountUserCreate.
type accountUserPlan struct {
	a         storage.Account
	u         storage.User
	email     string // lower-case, the email index field
	generated bool   // the account id was made here
	userArgs  []any  // scriptUserCreate's ARGV
	then      *signIn
	// keys and argv of scriptAccountUserCreate (userArgs last); inScript:
	// the session and the events are written by the script.
	keys     []string
	argv     []any
	inScript bool
	evOut    []storage.Event
}

func (s *Store) planAccountUser(ws string, a storage.Account, u storage.User, then *signIn) (*accountUserPlan, error) {
	email := strings.ToLower(strings.TrimSpace(a.Email))
	if email == "" {
		return nil, errors.New("redisstore: account email is empty")
	}
	if !validWS(ws) {
		return nil, storage.ErrNotFound
	}
	generated := a.ID == ""
	if generated {
		a.ID = storage.NewID()
	}
	if !validID(a.ID) {
		return nil, fmt.Errorf("redisstore: invalid account id %q", a.ID)
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now()
	}
	a.CreatedAt = fromMicro(toMicro(a.CreatedAt))
	if u.ID == "" {
		u.ID = storage.NewID()
	}
	if !validID(u.ID) {
		return nil, fmt.Errorf("redisstore: invalid user id %q", u.ID)
	}
	u.AccountID, u.WorkspaceID = a.ID, ws
	t := now()
	u.Created, u.Modified, u.Version = t, t, 1
	rec, err := encodeUser(u)
	if err != nil {
		return nil, err
	}
	p := &accountUserPlan{a: a, u: u, email: email, generated: generated, then: then,
		userArgs: []any{u.ID, rec, strings.ToLower(u.UserName), u.ExternalID, u.AccountID}}
	for _, e := range emailIndexKeys(u.UserName, u.Emails) {
		p.userArgs = append(p.userArgs, e)
	}
	// The sign-in's records carry the new ids, so they are encoded now.
	var sessB []byte
	var evArgs []any
	var sessErr, evErr error
	if then != nil {
		then.sess.AccountID = a.ID
		for i := range then.events {
			if then.events[i].AccountID == "" {
				then.events[i].AccountID = a.ID
			}
			if then.events[i].UserID == "" {
				then.events[i].UserID = u.ID
			}
		}
		sessB, sessErr = s.sessionRecord(&then.sess)
		p.evOut, evArgs, evErr = s.eventsArgs(ws, then.events)
	}
	p.keys = append(s.userKeys(ws), s.acctKey(a.ID, "a"), s.emailIndexKey())
	p.argv = []any{a.Email, a.FullName, a.Source, a.OriginWorkspace, toMicro(a.CreatedAt),
		acctWSPrefix + ws, email, a.ID}
	p.inScript = then != nil && sessErr == nil && evErr == nil
	if p.inScript {
		p.keys = append(p.keys, s.sessionKey(then.sess.Key), s.wsKey(ws, "events"))
		p.argv = append(p.argv, 1, sessB, then.sess.ExpiresAt.UnixMilli(), len(evArgs)-1)
		p.argv = append(p.argv, evArgs...) // maxlen, records...
	} else {
		p.argv = append(p.argv, 0, "", 0, 0, 0)
	}
	p.argv = append(p.argv, p.userArgs...)
	return p, nil
}

func (s *Store) createAccountAndUser(ctx context.Context, ws string, a storage.Account, u storage.User, then *signIn) (storage.JITSignIn, error) {
	p, err := s.planAccountUser(ws, a, u, then)
	if err != nil {
		return storage.JITSignIn{}, err
	}
	if _, cluster := s.rdb.(*redis.ClusterClient); !cluster {
		res, err := scriptAccountUserCreate.Run(ctx, s.rdb, p.keys, p.argv...).Result()
		if r, err, done := s.accountUserResult(ctx, ws, p, res, err); done {
			return r, err
		}
	}
	return s.accountUserSteps(ctx, ws, p)
}

// accountUserResult reads the outcome of scriptAccountUserCreate (or of
// its part of scriptConsumeLookupCreate); done is false when the script
// could not run because its keys are in several slots (a cluster node
// behind a plain client), and the ordered steps must follow.
func (s *Store) accountUserResult(ctx context.Context, ws string, p *accountUserPlan, res any, err error) (r storage.JITSignIn, _ error, done bool) {
	var conflict *storage.ConflictError
	switch {
	case err != nil && redis.HasErrorPrefix(err, "CROSSSLOT"):
		return r, nil, false
	case errors.As(s.wrap(err), &conflict):
		// The account was written; the membership was refused (the
		// script's only error replies after its first write).
		return storage.JITSignIn{Account: p.a}, conflict, true
	case err != nil:
		// A missing workspace (nothing written), or not known whether
		// the script ran (a lost connection).
		return r, s.wrap(err), true
	}
	var ids []string
	switch v := res.(type) {
	case int64: // 1 created; 0 id taken, -1 email taken: nothing written
		if v == 0 {
			return r, &storage.ConflictError{Field: "id"}, true
		}
		if v < 0 {
			return r, &storage.ConflictError{Field: "email"}, true
		}
	case []any: // created, with the sign-in: the events' stream ids
		for _, x := range v {
			id, _ := x.(string)
			ids = append(ids, id)
		}
	}
	r = storage.JITSignIn{Account: p.a, User: p.u}
	switch {
	case p.then == nil:
	case p.inScript:
		r.Events, r.EventsErr = s.eventsResult(p.evOut, ids, nil)
	default:
		// The session or the events did not encode: write what can be.
		r.Events, r.SessionErr, r.EventsErr = s.CreateSessionAndAppendEvents(ctx, p.then.sess, ws, p.then.events)
	}
	return r, nil, true
}

// accountUserSteps is CreateAccountAndUser(WithSession) as ordered round
// trips, for a Cluster.
func (s *Store) accountUserSteps(ctx context.Context, ws string, p *accountUserPlan) (storage.JITSignIn, error) {
	if err := s.createAndPublishAccount(ctx, ws, p.email, p.a, p.generated); err != nil {
		return storage.JITSignIn{}, err
	}
	if err := scriptUserCreate.Run(ctx, s.rdb, s.userKeys(ws), p.userArgs...).Err(); err != nil {
		return storage.JITSignIn{Account: p.a}, s.wrap(err)
	}
	r := storage.JITSignIn{Account: p.a, User: p.u}
	if p.then != nil {
		r.Events, r.SessionErr, r.EventsErr = s.CreateSessionAndAppendEvents(ctx, p.then.sess, ws, p.then.events)
	}
	return r, nil
}

// scriptAccountUserCreate: KEYS = userKeys, account hash, email index[,
// session key, events stream]; ARGV = email, name, source, origin,
// created (µs), back-pointer field (w:<ws>), index field (the lower-case
// email), account id; then 1 or 0 (a sign-in follows), session record,
// session expiry (ms since the epoch), n, stream max length, n event
// records; then the ARGV of scriptUserCreate. All of CreateAccountAndUser
// (WithSession) in one script, for a server that is not a Cluster (the
// keys are in up to four hash slots): returns SJ_NOTFOUND when the
// workspace does not exist, 0 when the account id is taken and -1 when the
// email is (nothing written in these three cases); otherwise it writes
// the account with its back-pointer and publishes it, then creates the
// membership. A refused membership returns its SJ_ error reply and the
// account stays (as after CreateAccount followed by a refused
// CreateUser); the session and the events are written only after the
// membership was created. Returns 1, or with a sign-in the events' stream
// ids.
var scriptAccountUserCreate = redis.NewScript(luaPrelude + luaCreateUser + luaAccountUserCreate +
	`return accountUserCreate(KEYS, ARGV, #ARGV)
`)

// luaAccountUserCreate is scriptAccountUserCreate as a function of KEYS,
// ARGV and the index of the last ARGV that belongs to it (the
// user-create arguments run to there), shared with
// scriptConsumeLookupCreate.
const luaAccountUserCreate = `local function accountUserCreate(KEYS, ARGV, last)
  if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
  if redis.call('HEXISTS', KEYS[10], 'v') == 1 then return 0 end
  if redis.call('HEXISTS', KEYS[11], ARGV[7]) == 1 then return -1 end
  local signIn = ARGV[9] == '1'
  local n = tonumber(ARGV[12])
  local A = {}
  for i = 14 + n, last do A[#A + 1] = ARGV[i] end
  redis.call('HSET', KEYS[10], 'v', '1', 'e', ARGV[1], 'n', ARGV[2], 's', ARGV[3], 'o', ARGV[4], 'c', ARGV[5], ARGV[6], '1')
  redis.call('HSET', KEYS[11], ARGV[7], ARGV[8])
  local r = createUser(KEYS, A)
  if r ~= 1 or not signIn then return r end
  redis.call('SET', KEYS[12], ARGV[10], 'PXAT', ARGV[11])
  local ids = {}
  for i = 14, 13 + n do
    ids[#ids + 1] = redis.call('XADD', KEYS[13], 'MAXLEN', '~', ARGV[13], '*', 'd', ARGV[i])
  end
  return ids
end
`

// scriptConsumeLookupCreate: KEYS and ARGV of scriptAccountUserCreate with
// a sign-in (13 keys), then KEYS[14] = the once key and a last ARGV = its
// expiry (ms since the epoch). ConsumeOnceAndLoginLookupOrCreate in one
// script, outside a Cluster: sets the once key unless it exists (returns
// {0}: consumed before, nothing else done); reads the email index (returns
// {1, account id} when the email is known, nothing created); otherwise
// runs accountUserCreate and returns {2, its result}, or its error reply.
var scriptConsumeLookupCreate = redis.NewScript(luaPrelude + luaCreateUser + luaAccountUserCreate + `
if not redis.call('SET', KEYS[14], '1', 'NX', 'PXAT', ARGV[#ARGV]) then return {0} end
local id = redis.call('HGET', KEYS[11], ARGV[7])
if id then return {1, id} end
local r = accountUserCreate(KEYS, ARGV, #ARGV - 1)
if type(r) == 'table' and r.err then return r end
return {2, r}
`)

// createAndPublishAccount is steps (1) and (2) of CreateAccountAndUser
// on a Cluster (or when the server refuses a cross-slot script): the
// account record with the back-pointer to ws, then the email index entry
// that publishes it, in two ordered round trips.
func (s *Store) createAndPublishAccount(ctx context.Context, ws, email string, a storage.Account, generated bool) error {
	recKey := s.acctKey(a.ID, "a")
	ok, err := scriptAccountCreateMember.Run(ctx, s.rdb, []string{recKey}, a.Email, a.FullName, a.Source,
		a.OriginWorkspace, toMicro(a.CreatedAt), acctWSPrefix+ws).Bool()
	if err != nil {
		return s.wrap(err)
	}
	if !ok {
		return &storage.ConflictError{Field: "id"}
	}
	won, err := s.rdb.HSetNX(ctx, s.emailIndexKey(), email, a.ID).Result()
	if err != nil {
		return s.wrap(err)
	}
	if !won {
		fields := []string{acctFieldVersion, acctFieldEmail, acctFieldName, acctFieldSource, acctFieldOrigin,
			acctFieldCreated}
		if generated {
			// Nobody else knows this id: its back-pointer goes too.
			fields = append(fields, acctWSPrefix+ws)
		}
		if err := s.rdb.HDel(ctx, recKey, fields...).Err(); err != nil {
			return s.wrap(err)
		}
		return &storage.ConflictError{Field: "email"}
	}
	return nil
}

// scriptEventsAppend: KEYS = meta, events; ARGV = maxlen, records...
// Returns the stream ids in order.
var scriptEventsAppend = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
local ids = {}
for i = 2, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'd', ARGV[i])
end
return ids
`)

// AppendEvents is AppendEvent for several events in one script (one round
// trip; the workspace's keys share a slot), so a sign-in that records two
// decisions waits once.
func (s *Store) AppendEvents(ctx context.Context, ws string, events []storage.Event) ([]storage.Event, error) {
	out, args, err := s.eventsArgs(ws, events)
	if err != nil || len(out) == 0 {
		return out, err
	}
	ids, err := scriptEventsAppend.Run(ctx, s.rdb, s.eventsKeys(ws), args...).StringSlice()
	return s.eventsResult(out, ids, err)
}

func (s *Store) eventsKeys(ws string) []string {
	return []string{s.wsKey(ws, "meta"), s.wsKey(ws, "events")}
}

// eventsArgs validates ws and encodes events for scriptEventsAppend; out
// are the events with their times set.
func (s *Store) eventsArgs(ws string, events []storage.Event) ([]storage.Event, []any, error) {
	if !validWS(ws) {
		return nil, nil, storage.ErrNotFound
	}
	out := make([]storage.Event, len(events))
	args := []any{eventStreamMax}
	for i, e := range events {
		if e.Time.IsZero() {
			e.Time = now()
		}
		e.Time = fromMicro(toMicro(e.Time))
		b, err := json.Marshal(eventWire{V: 1, Time: toMicro(e.Time), Type: e.Type, Actor: e.Actor,
			User: e.UserID, Account: e.AccountID, Detail: e.Detail})
		if err != nil {
			return nil, nil, err
		}
		out[i] = e
		args = append(args, b)
	}
	return out, args, nil
}

// eventsResult puts the stream ids from scriptEventsAppend into out.
func (s *Store) eventsResult(out []storage.Event, ids []string, err error) ([]storage.Event, error) {
	if err != nil {
		return nil, s.wrap(err)
	}
	if len(ids) != len(out) {
		return nil, fmt.Errorf("redisstore: appended %d events, want %d", len(ids), len(out))
	}
	for i := range out {
		out[i].ID = ids[i]
	}
	return out, nil
}

// CreateSessionAndAppendEvents pipelines CreateSession's SET and
// AppendEvents' script (different slots: one round trip on a single
// server, split per node by the Cluster client).
func (s *Store) CreateSessionAndAppendEvents(ctx context.Context, x storage.Session, ws string, events []storage.Event) ([]storage.Event, error, error) {
	sessB, sessErr := s.sessionRecord(&x)
	out, args, evErr := s.eventsArgs(ws, events)
	if sessErr != nil || evErr != nil || len(out) == 0 {
		// At most one write is left: do it alone.
		if sessErr == nil {
			sessErr = s.CreateSession(ctx, x)
		}
		if evErr == nil && len(out) > 0 {
			out, evErr = s.AppendEvents(ctx, ws, events)
		}
		return out, sessErr, evErr
	}
	var setCmd *redis.StatusCmd
	var evCmd *redis.Cmd
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		setCmd = p.SetArgs(ctx, s.sessionKey(x.Key), sessB, redis.SetArgs{ExpireAt: x.ExpiresAt})
		evCmd = scriptEventsAppend.EvalSha(ctx, p, s.eventsKeys(ws), args...)
		return nil
	})
	sessErr = s.wrap(setCmd.Err())
	ids, err := evCmd.StringSlice()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		ids, err = scriptEventsAppend.Run(ctx, s.rdb, s.eventsKeys(ws), args...).StringSlice()
	}
	out, evErr = s.eventsResult(out, ids, err)
	return out, sessErr, evErr
}

// sessionRecord checks x as CreateSession does and encodes it.
func (s *Store) sessionRecord(x *storage.Session) ([]byte, error) {
	if x.Key == "" {
		return nil, errors.New("redisstore: session key is empty")
	}
	if !x.ExpiresAt.After(time.Now()) {
		return nil, errors.New("redisstore: session already expired")
	}
	if x.CreatedAt.IsZero() {
		x.CreatedAt = now()
	}
	return encodeSession(*x)
}

// GetWorkspaceAndTakeTemp reads the workspace record and takes the temp
// value in one script (both keys are in the workspace's slot): the value
// is deleted only when the workspace exists. The record's decoding is
// cached by its exact bytes (decodeWorkspaceCached).
func (s *Store) GetWorkspaceAndTakeTemp(ctx context.Context, ws, key string) (storage.Workspace, []byte, bool, error) {
	if !validWS(ws) {
		return storage.Workspace{}, nil, false, storage.ErrNotFound
	}
	res, err := scriptWorkspaceTake.Run(ctx, s.rdb, []string{s.wsKey(ws, "meta"), s.wsKey(ws, "tmp:"+key)}).Slice()
	if err != nil {
		return storage.Workspace{}, nil, false, s.wrap(err)
	}
	rec, _ := res[0].(string)
	w, err := decodeWorkspaceCached(rec)
	if err != nil {
		return storage.Workspace{}, nil, false, err
	}
	if len(res) < 2 {
		return w, nil, false, nil
	}
	v, _ := res[1].(string)
	return w, []byte(v), true, nil
}

// scriptWorkspaceTake: KEYS = meta, temp key. Returns {record} or
// {record, value}; SJ_NOTFOUND without the workspace.
var scriptWorkspaceTake = redis.NewScript(`
local rec = redis.call('GET', KEYS[1])
if not rec then return redis.error_reply('SJ_NOTFOUND workspace') end
local v = redis.call('GETDEL', KEYS[2])
if v then return {rec, v} end
return {rec}
`)

// wsDecodeCache maps a workspace record's exact bytes to its decoding, so
// that the sign-in path does not decode the same record (with its IdP
// metadata, a few kB of JSON) on every request. Keyed by content, it can
// never return a stale workspace; bounded by wsDecodeCacheMax entries
// (an arbitrary one is dropped when full).
var wsDecodeCache = struct {
	sync.Mutex
	m map[string]storage.Workspace
}{m: map[string]storage.Workspace{}}

const wsDecodeCacheMax = 256

func decodeWorkspaceCached(rec string) (storage.Workspace, error) {
	wsDecodeCache.Lock()
	w, ok := wsDecodeCache.m[rec]
	wsDecodeCache.Unlock()
	if !ok {
		var err error
		if w, err = decodeWorkspace([]byte(rec)); err != nil {
			return storage.Workspace{}, err
		}
		wsDecodeCache.Lock()
		if len(wsDecodeCache.m) >= wsDecodeCacheMax {
			for k := range wsDecodeCache.m {
				delete(wsDecodeCache.m, k)
				break
			}
		}
		wsDecodeCache.m[rec] = w
		wsDecodeCache.Unlock()
	}
	// The caller gets its own slices.
	w.Settings.CustomRoles = slices.Clone(w.Settings.CustomRoles)
	return w, nil
}
