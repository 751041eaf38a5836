package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

// Event streams. Each workspace has two capped streams (XADD MAXLEN ~,
// which trims whole radix-tree nodes, so the caps are approximate): its
// events (SCIM, JIT, join, role and admin decisions) and its sign-in
// noise (login.*). Anyone can make the ACS refuse a sign-in, so without
// the split a flood of refusals would push every admin and provisioning
// event out of a single stream.
const (
	// eventStreamMax caps the main stream of each workspace.
	eventStreamMax = 10000
	// loginStreamMax caps the sign-in stream of each workspace.
	loginStreamMax = 10000
	// loginIDSuffix ends the id of an event from the sign-in stream, so
	// that a ListEvents cursor names its stream as well as its position.
	loginIDSuffix = "-l"
)

// eventStream is one of a workspace's two event streams.
type eventStream struct {
	name   string // key name under the workspace's tag
	max    int    // MAXLEN ~
	suffix string // after the stream entry id, to make the event id
	rank   int    // order of equal entry ids in ListEvents (main first)
}

var (
	mainEvents  = eventStream{name: "events", max: eventStreamMax}
	loginEvents = eventStream{name: "events:login", max: loginStreamMax, suffix: loginIDSuffix, rank: 1}
)

// streamFor chooses an event's stream by its type; every append path uses
// it. login.* events go to the sign-in stream: login.refused because
// anyone can cause it with a garbage POST to the ACS; login.succeeded
// because every sign-in of every member writes one (a company's daily
// sign-ins alone would fill a shared stream) while the change it led to,
// if any, has its own event (jit.*, role.synced, join.*) in the main
// stream; login.rate_limited because it reports the same flood. Every
// other event records a change made with a credential (SCIM token, admin
// token, signed assertion, emailed link) and stays in the main stream.
func streamFor(typ string) eventStream {
	if strings.HasPrefix(typ, "login.") {
		return loginEvents
	}
	return mainEvents
}

// key is the stream's Redis key in ws.
func (e eventStream) key(s *Store, ws string) string { return s.wsKey(ws, e.name) }

// eventWire is the stored form of an event (field "d" of a stream entry).
type eventWire struct {
	V       int               `json:"v"`
	Time    int64             `json:"t"`
	Type    string            `json:"ty"`
	Actor   string            `json:"ac,omitempty"`
	User    string            `json:"u,omitempty"`
	Account string            `json:"a,omitempty"`
	Detail  map[string]string `json:"d,omitempty"`
}

// scriptEventAppend: KEYS = meta, stream; ARGV = maxlen, record. Returns
// the entry id; SJ_NOTFOUND without the workspace.
var scriptEventAppend = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'd', ARGV[2])
`)

// AppendEvent adds e to the stream streamFor chooses, in a script that
// first checks the workspace exists (ErrNotFound otherwise).
func (s *Store) AppendEvent(ctx context.Context, ws string, e storage.Event) (storage.Event, error) {
	out, args, err := s.eventsArgs(ws, []storage.Event{e})
	if err != nil {
		return storage.Event{}, err
	}
	st := streamFor(e.Type)
	id, err := scriptEventAppend.Run(ctx, s.rdb, []string{s.wsKey(ws, "meta"), st.key(s, ws)}, st.max, args[1]).Text()
	if err != nil {
		return storage.Event{}, s.wrap(err)
	}
	out[0].ID = id + st.suffix
	return out[0], nil
}

// eventCursor is a position in the merged event order: an entry id of a
// stream. ListEvents orders events by entry id, and equal ids by stream
// rank (main first).
type eventCursor struct {
	ms, seq uint64
	rank    int
}

func (a eventCursor) less(b eventCursor) bool {
	if a.ms != b.ms {
		return a.ms < b.ms
	}
	if a.seq != b.seq {
		return a.seq < b.seq
	}
	return a.rank < b.rank
}

// entryID is the stream entry id "ms-seq".
func (a eventCursor) entryID() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

var eventIDRe = regexp.MustCompile(`^([0-9]{1,20})-([0-9]{1,20})(` + loginIDSuffix + `)?$`)

// parseEventID parses an event id as AppendEvent and ListEvents make them.
func parseEventID(id string) (eventCursor, bool) {
	m := eventIDRe.FindStringSubmatch(id)
	if m == nil {
		return eventCursor{}, false
	}
	ms, err1 := strconv.ParseUint(m[1], 10, 64)
	seq, err2 := strconv.ParseUint(m[2], 10, 64)
	if err1 != nil || err2 != nil {
		return eventCursor{}, false
	}
	c := eventCursor{ms: ms, seq: seq}
	if m[3] != "" {
		c.rank = loginEvents.rank
	}
	return c, true
}

// ListEvents reads both streams with XRANGE in one pipeline (their keys
// share the workspace's slot) and merges them in event order. The cursor
// after is the id of an event; the events after it are the entries of
// each stream that sort after it: for the cursor's own stream those with
// a greater entry id, for the other stream also the entry with an equal
// id when that stream ranks after the cursor's. An after value that is
// not an event id gives ErrNotFound.
func (s *Store) ListEvents(ctx context.Context, ws, after string, limit int) ([]storage.Event, error) {
	if !validWS(ws) {
		return nil, storage.ErrNotFound
	}
	var cur eventCursor
	if after != "" {
		var ok bool
		if cur, ok = parseEventID(after); !ok {
			return nil, storage.ErrNotFound
		}
	}
	out := []storage.Event{}
	if limit <= 0 {
		return out, nil
	}
	streams := []eventStream{mainEvents, loginEvents}
	cmds := make([]*redis.XMessageSliceCmd, len(streams))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, st := range streams {
			start := "-"
			switch {
			case after == "":
			case st.rank > cur.rank:
				start = cur.entryID()
			default:
				start = "(" + cur.entryID()
			}
			cmds[i] = p.XRangeN(ctx, st.key(s, ws), start, "+", int64(limit))
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	type entry struct {
		at eventCursor
		e  storage.Event
	}
	var all []entry
	for i, st := range streams {
		for _, m := range cmds[i].Val() {
			at, ok := parseEventID(m.ID)
			if !ok {
				return nil, fmt.Errorf("redisstore: unexpected stream id %q", m.ID)
			}
			at.rank = st.rank
			raw, _ := m.Values["d"].(string)
			var w eventWire
			if err := json.Unmarshal([]byte(raw), &w); err != nil {
				return nil, fmt.Errorf("redisstore: decode event: %w", err)
			}
			all = append(all, entry{at: at, e: storage.Event{ID: m.ID + st.suffix, Time: fromMicro(w.Time),
				Type: w.Type, Actor: w.Actor, UserID: w.User, AccountID: w.Account, Detail: w.Detail}})
		}
	}
	slices.SortFunc(all, func(a, b entry) int {
		switch {
		case a.at.less(b.at):
			return -1
		case b.at.less(a.at):
			return 1
		}
		return 0
	})
	for _, x := range all[:min(len(all), limit)] {
		out = append(out, x.e)
	}
	return out, nil
}

// sessionWire is the stored form of a session (key sess:<key>, PXAT expiry).
type sessionWire struct {
	V         int    `json:"v"`
	Account   string `json:"a"`
	Workspace string `json:"w,omitempty"`
	Created   int64  `json:"c"`
	Expires   int64  `json:"e"`
}

func encodeSession(x storage.Session) ([]byte, error) {
	return json.Marshal(sessionWire{V: 1, Account: x.AccountID, Workspace: x.ActiveWorkspace,
		Created: toMicro(x.CreatedAt), Expires: toMicro(x.ExpiresAt)})
}

func decodeSession(key string, b []byte) (storage.Session, error) {
	var w sessionWire
	if err := json.Unmarshal(b, &w); err != nil {
		return storage.Session{}, fmt.Errorf("redisstore: decode session: %w", err)
	}
	x := storage.Session{Key: key, AccountID: w.Account, ActiveWorkspace: w.Workspace,
		CreatedAt: fromMicro(w.Created), ExpiresAt: fromMicro(w.Expires)}
	// The record's own expiry is authoritative: the embedded server
	// expires keys up to a second late.
	if !x.ExpiresAt.After(time.Now()) {
		return storage.Session{}, storage.ErrNotFound
	}
	return x, nil
}

// CreateSession stores s with PXAT s.ExpiresAt.
func (s *Store) CreateSession(ctx context.Context, x storage.Session) error {
	if x.Key == "" {
		return errors.New("redisstore: session key is empty")
	}
	if !x.ExpiresAt.After(time.Now()) {
		return errors.New("redisstore: session already expired")
	}
	if x.CreatedAt.IsZero() {
		x.CreatedAt = now()
	}
	b, err := encodeSession(x)
	if err != nil {
		return err
	}
	return s.wrap(s.rdb.SetArgs(ctx, s.sessionKey(x.Key), b, redis.SetArgs{ExpireAt: x.ExpiresAt}).Err())
}

// GetSession reads a live session.
func (s *Store) GetSession(ctx context.Context, key string) (storage.Session, error) {
	b, err := s.rdb.Get(ctx, s.sessionKey(key)).Bytes()
	if err != nil {
		return storage.Session{}, s.wrap(err)
	}
	return decodeSession(key, b)
}

// UpdateSession is a WATCH/MULTI read-modify-write that keeps the key's TTL
// (SET KEEPTTL); fn may run more than once. Key and expiry cannot change.
func (s *Store) UpdateSession(ctx context.Context, key string, fn func(*storage.Session) error) (storage.Session, error) {
	k := s.sessionKey(key)
	var result storage.Session
	for i := 0; i < maxRetries; i++ {
		if err := backoff(ctx, i); err != nil {
			return storage.Session{}, err
		}
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			b, err := tx.Get(ctx, k).Bytes()
			if err != nil {
				return err
			}
			x, err := decodeSession(key, b)
			if err != nil {
				return err
			}
			old := x
			if err := fn(&x); err != nil {
				return callbackError{err}
			}
			x.Key, x.ExpiresAt, x.CreatedAt = old.Key, old.ExpiresAt, old.CreatedAt
			nb, err := encodeSession(x)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.SetArgs(ctx, k, nb, redis.SetArgs{KeepTTL: true})
				return nil
			})
			if err == nil {
				result = x
			}
			return err
		}, k)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		var ce callbackError
		if errors.As(err, &ce) {
			return storage.Session{}, ce.err
		}
		if errors.Is(err, storage.ErrNotFound) {
			return storage.Session{}, err
		}
		if err != nil {
			return storage.Session{}, s.wrap(err)
		}
		return result, nil
	}
	return storage.Session{}, storage.ErrConflictRetries
}

// DeleteSession removes a session (no error when it is already gone).
func (s *Store) DeleteSession(ctx context.Context, key string) error {
	return s.wrap(s.rdb.Del(ctx, s.sessionKey(key)).Err())
}

// verificationWire is the stored form of a verification (key
// {acct:<id>}:vt:<tokenHash>, PXAT expiry).
type verificationWire struct {
	V         int       `json:"v"`
	Account   string    `json:"a"`
	Workspace string    `json:"ws"`
	Roles     rolesWire `json:"r"`
	User      string    `json:"u,omitempty"`
	Created   int64     `json:"c"`
	// Exp is the expiry in milliseconds (read by the Lua script).
	Exp int64 `json:"exp"`
}

// CreateVerification stores v under the account's tag and makes it the
// current one for (account, workspace), deleting the previous token, in one
// script.
func (s *Store) CreateVerification(ctx context.Context, v storage.Verification) error {
	if !validID(v.AccountID) || !validWS(v.WorkspaceID) || !validID(v.TokenHash) {
		return errors.New("redisstore: verification needs an account, a workspace and a token hash")
	}
	if !v.ExpiresAt.After(time.Now()) {
		return errors.New("redisstore: verification already expired")
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = now()
	}
	b, err := json.Marshal(verificationWire{V: 1, Account: v.AccountID, Workspace: v.WorkspaceID,
		Roles: rolesWire{Dev: v.Roles.Dev, Test: v.Roles.Test, Prod: v.Roles.Prod}, User: v.UserID,
		Created: toMicro(v.CreatedAt), Exp: v.ExpiresAt.UnixMilli()})
	if err != nil {
		return err
	}
	keys := []string{s.acctKey(v.AccountID, "vc:"+v.WorkspaceID), s.acctKey(v.AccountID, "vt:"+v.TokenHash)}
	return s.wrap(scriptVerificationCreate.Run(ctx, s.rdb, keys, s.acctKey(v.AccountID, ""), v.TokenHash, b,
		v.ExpiresAt.UnixMilli()).Err())
}

func (s *Store) verification(ctx context.Context, accountID, tokenHash string, consume bool) (storage.Verification, error) {
	if !validID(accountID) || !validID(tokenHash) {
		return storage.Verification{}, storage.ErrNotFound
	}
	c := "0"
	if consume {
		c = "1"
	}
	rec, err := scriptVerificationGet.Run(ctx, s.rdb, []string{s.acctKey(accountID, "vt:"+tokenHash)},
		s.acctKey(accountID, ""), tokenHash, time.Now().UnixMilli(), c).Text()
	if err != nil {
		return storage.Verification{}, s.wrap(err)
	}
	var w verificationWire
	if err := json.Unmarshal([]byte(rec), &w); err != nil {
		return storage.Verification{}, fmt.Errorf("redisstore: decode verification: %w", err)
	}
	return storage.Verification{TokenHash: tokenHash, AccountID: w.Account, WorkspaceID: w.Workspace,
		Roles:  storage.Roles{Dev: w.Roles.Dev, Test: w.Roles.Test, Prod: w.Roles.Prod},
		UserID: w.User, CreatedAt: fromMicro(w.Created), ExpiresAt: time.UnixMilli(w.Exp).UTC()}, nil
}

// GetVerification reads a live, current verification without consuming it.
func (s *Store) GetVerification(ctx context.Context, accountID, tokenHash string) (storage.Verification, error) {
	return s.verification(ctx, accountID, tokenHash, false)
}

// ConsumeVerification checks and deletes a verification in one script, so
// exactly one of concurrent callers gets it.
func (s *Store) ConsumeVerification(ctx context.Context, accountID, tokenHash string) (storage.Verification, error) {
	return s.verification(ctx, accountID, tokenHash, true)
}

// Allow is GCRA from github.com/go-redis/redis_rate: one Lua script reads
// and advances the key's theoretical arrival time, using the server's
// clock (TIME), so every process agrees. The key (redis_rate's "rate:"
// before P:rl:<key>) holds one number and expires once the key is back
// at a full burst.
func (s *Store) Allow(ctx context.Context, key string, r storage.Rate) (storage.Allowed, error) {
	if r.Limit <= 0 || r.Period <= 0 {
		return storage.Allowed{}, fmt.Errorf("redisstore: invalid rate %+v", r)
	}
	if r.Burst <= 0 {
		r.Burst = r.Limit
	}
	res, err := redis_rate.NewLimiter(s.rdb).Allow(ctx, s.rateKey(key),
		redis_rate.Limit{Rate: r.Limit, Burst: r.Burst, Period: r.Period})
	if err != nil {
		return storage.Allowed{}, s.wrap(err)
	}
	if res.Allowed > 0 {
		return storage.Allowed{OK: true}, nil
	}
	return storage.Allowed{RetryAfter: max(res.RetryAfter, time.Millisecond)}, nil
}

// ConsumeOnce is SET NX PXAT: true only for the first caller. An expiry in
// the past (or under a second away) is kept for a second.
func (s *Store) ConsumeOnce(ctx context.Context, ws, key string, expiresAt time.Time) (bool, error) {
	if !validWS(ws) {
		return false, errors.New("redisstore: invalid workspace id")
	}
	err := s.rdb.SetArgs(ctx, s.onceKey(ws, key), "1", redis.SetArgs{Mode: "NX", ExpireAt: onceExpiry(expiresAt)}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, s.wrap(err)
	}
	return true, nil
}

// onceKey is the replay-cache key of ConsumeOnce and the sign-in calls
// that consume with it.
func (s *Store) onceKey(ws, key string) string { return s.wsKey(ws, "once:"+key) }

// onceExpiry keeps a consumed key for at least a second: an expiry in the
// past (or under a second away) would drop it at once.
func onceExpiry(expiresAt time.Time) time.Time {
	if min := time.Now().Add(time.Second); expiresAt.Before(min) {
		return min
	}
	return expiresAt
}

// PutTemp stores value with a TTL (PX).
func (s *Store) PutTemp(ctx context.Context, ws, key string, value []byte, ttl time.Duration) error {
	if !validWS(ws) {
		return errors.New("redisstore: invalid workspace id")
	}
	if ttl < time.Millisecond {
		return errors.New("redisstore: temp ttl must be positive")
	}
	return s.wrap(s.rdb.Set(ctx, s.wsKey(ws, "tmp:"+key), value, ttl).Err())
}

// TakeTemp is GETDEL: the value is returned once.
func (s *Store) TakeTemp(ctx context.Context, ws, key string) ([]byte, error) {
	if !validWS(ws) {
		return nil, storage.ErrNotFound
	}
	b, err := s.rdb.GetDel(ctx, s.wsKey(ws, "tmp:"+key)).Bytes()
	if err != nil {
		return nil, s.wrap(err)
	}
	return b, nil
}

// mailCap is how many messages the outbox keeps.
const mailCap = 1000

// mailWire is the stored form of an outbox message (field of {mail}:m); its
// status lives in {mail}:st so that updates never re-encode the message.
type mailWire struct {
	V       int    `json:"v"`
	ID      string `json:"id"`
	To      string `json:"to"`
	Subject string `json:"s"`
	Text    string `json:"t,omitempty"`
	HTML    string `json:"h,omitempty"`
	Time    int64  `json:"c"`
}

type mailStatusWire struct {
	Status string `json:"st"`
	Error  string `json:"err,omitempty"`
}

// AppendMail adds m to the capped outbox (one script: record, status, list,
// trim).
func (s *Store) AppendMail(ctx context.Context, m storage.Mail) (storage.Mail, error) {
	m.ID = uuid.NewString()
	m.Time = now()
	if m.Status == "" {
		m.Status = "queued"
	}
	b, err := json.Marshal(mailWire{V: 1, ID: m.ID, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML,
		Time: toMicro(m.Time)})
	if err != nil {
		return storage.Mail{}, err
	}
	st, err := json.Marshal(mailStatusWire{Status: m.Status, Error: m.Error})
	if err != nil {
		return storage.Mail{}, err
	}
	err = scriptMailAppend.Run(ctx, s.rdb, []string{s.mailKey("ids"), s.mailKey("m"), s.mailKey("st")},
		m.ID, b, st, mailCap).Err()
	if err != nil {
		return storage.Mail{}, s.wrap(err)
	}
	return m, nil
}

// SetMailStatus records delivery of a message (ErrNotFound when unknown).
func (s *Store) SetMailStatus(ctx context.Context, id, status, errText string) error {
	st, err := json.Marshal(mailStatusWire{Status: status, Error: errText})
	if err != nil {
		return err
	}
	return s.wrap(scriptMailStatus.Run(ctx, s.rdb, []string{s.mailKey("m"), s.mailKey("st")}, id, st).Err())
}

// ListMail returns up to limit messages, newest first.
func (s *Store) ListMail(ctx context.Context, limit int) ([]storage.Mail, error) {
	out := []storage.Mail{}
	if limit <= 0 {
		return out, nil
	}
	var recs, sts []any
	ids, err := s.rdb.LRange(ctx, s.mailKey("ids"), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, s.wrap(err)
	}
	if len(ids) == 0 {
		return out, nil
	}
	recs, err = s.rdb.HMGet(ctx, s.mailKey("m"), ids...).Result()
	if err != nil {
		return nil, s.wrap(err)
	}
	sts, err = s.rdb.HMGet(ctx, s.mailKey("st"), ids...).Result()
	if err != nil {
		return nil, s.wrap(err)
	}
	for i := range ids {
		raw, ok := recs[i].(string)
		if !ok {
			continue // trimmed between the two reads
		}
		var w mailWire
		if err := json.Unmarshal([]byte(raw), &w); err != nil {
			return nil, fmt.Errorf("redisstore: decode mail: %w", err)
		}
		m := storage.Mail{ID: w.ID, To: w.To, Subject: w.Subject, Text: w.Text, HTML: w.HTML, Time: fromMicro(w.Time)}
		if st, ok := sts[i].(string); ok {
			var sw mailStatusWire
			if err := json.Unmarshal([]byte(st), &sw); err == nil {
				m.Status, m.Error = sw.Status, sw.Error
			}
		}
		out = append(out, m)
	}
	return out, nil
}
