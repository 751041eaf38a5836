package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

// sessionWire is the stored form of a session (key sess:<key>, PXAT expiry).
type sessionWire struct {
	V         int    `json:"v"`
	Account   string `json:"a"`
	Workspace string `json:"w,omitempty"`
	Created   int64  `json:"c"`
	Expires   int64  `json:"e"`

	// The IdP session (storage.IdPSession), only when there is one.
	IdPWorkspace string `json:"iw,omitempty"`
	NameID       string `json:"n,omitempty"`
	NameIDFormat string `json:"nf,omitempty"`
	SessionIndex string `json:"si,omitempty"`

	// Operator is storage.Session.Operator.
	Operator string `json:"op,omitempty"`
}

func encodeSession(x storage.Session) ([]byte, error) {
	return json.Marshal(sessionWire{V: 1, Account: x.AccountID, Workspace: x.ActiveWorkspace,
		Created: toMicro(x.CreatedAt), Expires: toMicro(x.ExpiresAt),
		IdPWorkspace: x.IdP.Workspace, NameID: x.IdP.NameID, NameIDFormat: x.IdP.NameIDFormat, SessionIndex: x.IdP.SessionIndex,
		Operator: x.Operator})
}

func decodeSession(key string, b []byte) (storage.Session, error) {
	var w sessionWire
	if err := json.Unmarshal(b, &w); err != nil {
		return storage.Session{}, fmt.Errorf("redisstore: decode session: %w", err)
	}
	x := storage.Session{Key: key, AccountID: w.Account, ActiveWorkspace: w.Workspace,
		CreatedAt: fromMicro(w.Created), ExpiresAt: fromMicro(w.Expires),
		IdP:      storage.IdPSession{Workspace: w.IdPWorkspace, NameID: w.NameID, NameIDFormat: w.NameIDFormat, SessionIndex: w.SessionIndex},
		Operator: w.Operator}
	// The record's own expiry is authoritative: the embedded server
	// expires keys up to a second late.
	if !x.ExpiresAt.After(time.Now()) {
		return storage.Session{}, storage.ErrNotFound
	}
	return x, nil
}

// CreateSession stores s with PXAT s.ExpiresAt.
func (s *Store) CreateSession(ctx context.Context, x storage.Session) error {
	b, err := s.sessionRecord(&x)
	if err != nil {
		return err
	}
	return s.wrap(s.rdb.SetArgs(ctx, s.sessionKey(x.Key), b, redis.SetArgs{ExpireAt: x.ExpiresAt}).Err())
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
	var result storage.Session
	err := s.watchUpdate(ctx, s.sessionKey(key), func(b []byte) ([]byte, error) {
		x, err := decodeSession(key, b)
		if err != nil {
			return nil, err
		}
		old := x
		if err := fn(&x); err != nil {
			return nil, callbackError{err}
		}
		x.Key, x.ExpiresAt, x.CreatedAt = old.Key, old.ExpiresAt, old.CreatedAt
		result = x
		return encodeSession(x)
	}, setKeep(true))
	if err != nil {
		return storage.Session{}, err
	}
	return result, nil
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
	// Sources is Verification.RoleSources.
	Sources map[string]string `json:"rs,omitempty"`
	User    string            `json:"u,omitempty"`
	Created int64             `json:"c"`
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
		Roles: rolesWire{Dev: v.Roles.Dev, Test: v.Roles.Test, Prod: v.Roles.Prod}, Sources: v.RoleSources, User: v.UserID,
		Created: toMicro(v.CreatedAt), Exp: v.ExpiresAt.UnixMilli()})
	if err != nil {
		return err
	}
	keys := []string{s.acctKey(v.AccountID, "vc:"+v.WorkspaceID), s.acctKey(v.AccountID, "vt:"+v.TokenHash)}
	return s.wrap(scriptVerificationCreate.Run(ctx, s.rdb, keys, s.acctKey(v.AccountID, ""), v.TokenHash, b,
		v.ExpiresAt.UnixMilli()).Err())
}

// verification reads (op "") or consumes (op: the consumer's id) a
// verification in one script (scriptVerificationGet).
func (s *Store) verification(ctx context.Context, accountID, tokenHash, op string) (storage.Verification, error) {
	if !validID(accountID) || !validID(tokenHash) {
		return storage.Verification{}, storage.ErrNotFound
	}
	rec, err := scriptVerificationGet.Run(ctx, s.rdb, []string{s.acctKey(accountID, "vt:"+tokenHash)},
		s.acctKey(accountID, ""), tokenHash, time.Now().UnixMilli(), op).Text()
	if err != nil {
		return storage.Verification{}, s.wrap(err)
	}
	var w verificationWire
	if err := json.Unmarshal([]byte(rec), &w); err != nil {
		return storage.Verification{}, fmt.Errorf("redisstore: decode verification: %w", err)
	}
	return storage.Verification{TokenHash: tokenHash, AccountID: w.Account, WorkspaceID: w.Workspace,
		Roles:       storage.Roles{Dev: w.Roles.Dev, Test: w.Roles.Test, Prod: w.Roles.Prod},
		RoleSources: w.Sources, UserID: w.User, CreatedAt: fromMicro(w.Created), ExpiresAt: time.UnixMilli(w.Exp).UTC()}, nil
}

// GetVerification reads a live, current verification without consuming it.
func (s *Store) GetVerification(ctx context.Context, accountID, tokenHash string) (storage.Verification, error) {
	return s.verification(ctx, accountID, tokenHash, "")
}

// ConsumeVerification checks a verification and marks it used by op in
// one script, so exactly one of concurrent callers gets it (and a re-send
// of that caller's call, with the same op, gets it again).
func (s *Store) ConsumeVerification(ctx context.Context, accountID, tokenHash, op string) (storage.Verification, error) {
	if op == "" {
		return storage.Verification{}, errors.New("redisstore: consuming a verification needs an op")
	}
	return s.verification(ctx, accountID, tokenHash, op)
}

// Allow runs scriptRate over every limit's key (all of them under the
// {rl} tag, so one script may touch them together on a Cluster too).
func (s *Store) Allow(ctx context.Context, limits ...storage.Limit) (storage.Allowed, error) {
	return s.rate(ctx, 1, limits)
}

// CheckRate runs scriptRate counting no event, which writes nothing.
func (s *Store) CheckRate(ctx context.Context, limits ...storage.Limit) (storage.Allowed, error) {
	return s.rate(ctx, 0, limits)
}

// rate runs scriptRate for cost events (1, or 0 to only look).
func (s *Store) rate(ctx context.Context, cost int, limits []storage.Limit) (storage.Allowed, error) {
	if len(limits) == 0 {
		return storage.Allowed{}, errors.New("redisstore: no rate limit given")
	}
	keys := make([]string, len(limits))
	args := make([]any, 1, 1+2*len(limits))
	args[0] = cost
	for i, l := range limits {
		r := l.Rate
		if r.Limit <= 0 || r.Period <= 0 {
			return storage.Allowed{}, fmt.Errorf("redisstore: invalid rate %+v", r)
		}
		if r.Burst <= 0 {
			r.Burst = r.Limit
		}
		interval := r.Period.Seconds() / float64(r.Limit)
		keys[i] = s.rateKey(l.Key)
		args = append(args, interval, interval*float64(r.Burst))
	}
	res, err := scriptRate.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return storage.Allowed{}, s.wrap(err)
	}
	if len(res) != 2 || res[0] < 0 || int(res[0]) > len(limits) {
		return storage.Allowed{}, fmt.Errorf("redisstore: rate script answered %v", res)
	}
	if res[0] == 0 {
		return storage.Allowed{OK: true}, nil
	}
	return storage.Allowed{Limit: int(res[0]) - 1, RetryAfter: max(time.Duration(res[1])*time.Microsecond, time.Microsecond)}, nil
}

// ConsumeOnce sets the key to a token new for this call unless it exists
// (scriptConsumeOnce): true only for the first caller, and for a re-send
// of that call's script. An expiry in the past (or under a second away) is
// kept for a second.
func (s *Store) ConsumeOnce(ctx context.Context, ws, key string, expiresAt time.Time) (bool, error) {
	if !validWS(ws) {
		return false, errors.New("redisstore: invalid workspace id")
	}
	n, err := scriptConsumeOnce.Run(ctx, s.rdb, []string{s.onceKey(ws, key)}, storage.NewID(),
		onceExpiry(expiresAt).UnixMilli()).Int()
	if err != nil {
		return false, s.wrap(err)
	}
	return n == 1, nil
}

// onceKey is the replay-cache key of ConsumeOnce.
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
// status lives in {mail}:st and its delivery attempts in {mail}:at, so that
// updates never re-encode the message.
type mailWire struct {
	V       int    `json:"v"`
	ID      string `json:"id"`
	To      string `json:"to"`
	Subject string `json:"s"`
	Text    string `json:"t,omitempty"`
	HTML    string `json:"h,omitempty"`
	Time    int64  `json:"c"`
	Expires int64  `json:"x,omitempty"`
}

type mailStatusWire struct {
	Status string `json:"st"`
	Error  string `json:"err,omitempty"`
}

// mailAttemptWire is one delivery attempt; the {mail}:at field of a message
// is its attempts' objects joined by commas (scriptMailAttempt).
type mailAttemptWire struct {
	Time    int64  `json:"t"`
	Outcome string `json:"o"`
	Error   string `json:"err,omitempty"`
}

func (s *Store) mailKeys() []string {
	return []string{s.mailKey("m"), s.mailKey("st"), s.mailKey("at")}
}

// encodeAttempts is the {mail}:at form of attempts.
func encodeAttempts(as []storage.MailAttempt) (string, error) {
	parts := make([]string, 0, len(as))
	for _, a := range as {
		b, err := json.Marshal(mailAttemptWire{Time: toMicro(a.Time), Outcome: a.Outcome, Error: a.Error})
		if err != nil {
			return "", err
		}
		parts = append(parts, string(b))
	}
	return strings.Join(parts, ","), nil
}

// AppendMail adds m to the capped outbox (one script: record, status,
// attempts, list, trim).
func (s *Store) AppendMail(ctx context.Context, m storage.Mail) (storage.Mail, error) {
	m.ID = uuid.NewString()
	m.Time = now()
	if m.Status == "" {
		m.Status = "queued"
	}
	w := mailWire{V: 1, ID: m.ID, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML, Time: toMicro(m.Time)}
	if !m.Expires.IsZero() {
		w.Expires = toMicro(m.Expires)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return storage.Mail{}, err
	}
	st, err := json.Marshal(mailStatusWire{Status: m.Status, Error: m.Error})
	if err != nil {
		return storage.Mail{}, err
	}
	at, err := encodeAttempts(m.Attempts)
	if err != nil {
		return storage.Mail{}, err
	}
	keys := append([]string{s.mailKey("ids")}, s.mailKeys()...)
	if err := scriptMailAppend.Run(ctx, s.rdb, keys, m.ID, b, st, mailCap, at).Err(); err != nil {
		return storage.Mail{}, s.wrap(err)
	}
	return m, nil
}

// AddMailAttempt appends a delivery attempt and sets the status (one
// script; ErrNotFound when unknown).
func (s *Store) AddMailAttempt(ctx context.Context, id string, a storage.MailAttempt, status, errText string) error {
	st, err := json.Marshal(mailStatusWire{Status: status, Error: errText})
	if err != nil {
		return err
	}
	at, err := encodeAttempts([]storage.MailAttempt{a})
	if err != nil {
		return err
	}
	return s.wrap(scriptMailAttempt.Run(ctx, s.rdb, s.mailKeys(), id, st, at).Err())
}

// GetMail returns one message (ErrNotFound when unknown).
func (s *Store) GetMail(ctx context.Context, id string) (storage.Mail, error) {
	ms, err := s.readMail(ctx, []string{id})
	if err != nil {
		return storage.Mail{}, err
	}
	if len(ms) == 0 {
		return storage.Mail{}, storage.ErrNotFound
	}
	return ms[0], nil
}

// ListMail returns up to limit messages, newest first.
func (s *Store) ListMail(ctx context.Context, limit int) ([]storage.Mail, error) {
	if limit <= 0 {
		return []storage.Mail{}, nil
	}
	ids, err := s.rdb.LRange(ctx, s.mailKey("ids"), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, s.wrap(err)
	}
	return s.readMail(ctx, ids)
}

// readMail reads the messages ids in one pipeline (record, status,
// attempts), skipping those no longer in the outbox.
func (s *Store) readMail(ctx context.Context, ids []string) ([]storage.Mail, error) {
	out := []storage.Mail{}
	if len(ids) == 0 {
		return out, nil
	}
	var cmds []*redis.SliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range s.mailKeys() {
			cmds = append(cmds, p.HMGet(ctx, k, ids...))
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	recs, sts, ats := cmds[0].Val(), cmds[1].Val(), cmds[2].Val()
	for i := range ids {
		raw, ok := recs[i].(string)
		if !ok {
			continue // trimmed, or never there
		}
		var w mailWire
		if err := json.Unmarshal([]byte(raw), &w); err != nil {
			return nil, fmt.Errorf("redisstore: decode mail: %w", err)
		}
		m := storage.Mail{ID: w.ID, To: w.To, Subject: w.Subject, Text: w.Text, HTML: w.HTML, Time: fromMicro(w.Time)}
		if w.Expires != 0 {
			m.Expires = fromMicro(w.Expires)
		}
		if st, ok := sts[i].(string); ok {
			var sw mailStatusWire
			if err := json.Unmarshal([]byte(st), &sw); err == nil {
				m.Status, m.Error = sw.Status, sw.Error
			}
		}
		if at, ok := ats[i].(string); ok {
			var aw []mailAttemptWire
			if err := json.Unmarshal([]byte("["+at+"]"), &aw); err != nil {
				return nil, fmt.Errorf("redisstore: decode mail attempts: %w", err)
			}
			for _, a := range aw {
				m.Attempts = append(m.Attempts, storage.MailAttempt{Time: fromMicro(a.Time), Outcome: a.Outcome, Error: a.Error})
			}
		}
		out = append(out, m)
	}
	return out, nil
}
