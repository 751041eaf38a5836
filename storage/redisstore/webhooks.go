package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

// Webhook keys, all in the workspace's slot except the registry:
//
//   - {ws}:webhooks, a set of endpoint ids: its existence is what makes
//     luaAppendEvents copy events into the outbox;
//   - {ws}:webhook:<id>, an endpoint's record (JSON);
//   - {ws}:outbox, the webhook outbox stream (fields e = event id, d =
//     event record), read by the consumer group outboxGroup, at most
//     OutboxMax entries;
//   - {ws}:outbox:dropped, the number of events not added to the outbox
//     because it was full, until TakeOutboxDropped;
//   - {ws}:webhook:<id>:attempts, the endpoint's capped attempt stream;
//   - {registry}:webhooks, the set of workspaces that have had endpoints.
const (
	// OutboxMax caps each workspace's webhook outbox: an event appended
	// while the outbox holds this many undispatched entries is not added
	// to it but counted (TakeOutboxDropped). A dispatcher empties the
	// outbox within moments, so it fills only while no scimjit process
	// dispatches (they all are down, or events are written by another
	// program) for a long while; full, it holds about 20-30 MB.
	OutboxMax = 100000
	// outboxMaxLua is OutboxMax in the event-appending Lua.
	outboxMaxLua = "100000"
	outboxGroup  = "dispatch"
	// attemptsMax caps each endpoint's attempt stream (MAXLEN ~).
	attemptsMax = 1000
)

func (s *Store) webhookSetKey(ws string) string { return s.wsKey(ws, "webhooks") }
func (s *Store) webhookKey(ws, id string) string {
	return s.wsKey(ws, "webhook:"+id)
}
func (s *Store) attemptsKey(ws, id string) string  { return s.wsKey(ws, "webhook:"+id+":attempts") }
func (s *Store) outboxKey(ws string) string        { return s.wsKey(ws, "outbox") }
func (s *Store) outboxDroppedKey(ws string) string { return s.wsKey(ws, "outbox:dropped") }
func (s *Store) webhookRegistryKey() string        { return s.prefix + ":{registry}:webhooks" }

// webhookWire is the stored form of an endpoint.
type webhookWire struct {
	V           int          `json:"v"`
	ID          string       `json:"id"`
	URL         string       `json:"url"`
	Description string       `json:"desc,omitempty"`
	Types       []string     `json:"types,omitempty"`
	Enabled     bool         `json:"on"`
	Disabled    string       `json:"off,omitempty"`
	Secrets     []secretWire `json:"sec"`
	Created     int64        `json:"c"`
	Updated     int64        `json:"u"`
}

type secretWire struct {
	Sealed  []byte `json:"k"`
	Created int64  `json:"c"`
	Expires int64  `json:"x,omitempty"`
}

func encodeWebhook(w storage.Webhook) ([]byte, error) {
	x := webhookWire{V: 1, ID: w.ID, URL: w.URL, Description: w.Description, Types: w.Types, Enabled: w.Enabled,
		Disabled: w.DisabledReason, Created: toMicro(w.CreatedAt), Updated: toMicro(w.UpdatedAt)}
	for _, sec := range w.Secrets {
		x.Secrets = append(x.Secrets, secretWire{Sealed: sec.Sealed, Created: toMicro(sec.CreatedAt), Expires: toMicro(sec.ExpiresAt)})
	}
	return json.Marshal(x)
}

func decodeWebhook(b []byte) (storage.Webhook, error) {
	var x webhookWire
	if err := json.Unmarshal(b, &x); err != nil {
		return storage.Webhook{}, fmt.Errorf("redisstore: decode webhook: %w", err)
	}
	w := storage.Webhook{ID: x.ID, URL: x.URL, Description: x.Description, Types: x.Types, Enabled: x.Enabled,
		DisabledReason: x.Disabled, CreatedAt: fromMicro(x.Created), UpdatedAt: fromMicro(x.Updated)}
	for _, sec := range x.Secrets {
		w.Secrets = append(w.Secrets, storage.WebhookSecret{Sealed: sec.Sealed, CreatedAt: fromMicro(sec.Created),
			ExpiresAt: fromMicro(sec.Expires)})
	}
	return w, nil
}

// scriptWebhookCreate: KEYS = meta, endpoint set, record, outbox; ARGV =
// id, record, group. Creates the outbox's consumer group at the stream's
// end (events from now on) unless it exists.
var scriptWebhookCreate = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
if redis.call('SET', KEYS[3], ARGV[2], 'NX') == false then return redis.error_reply('SJ_CONFLICT webhook') end
redis.call('SADD', KEYS[2], ARGV[1])
pcall(redis.call, 'XGROUP', 'CREATE', KEYS[4], ARGV[3], '$', 'MKSTREAM')
return 1
`)

// CreateWebhook adds the workspace to the webhook registry first (another
// slot), so that a dispatcher reads its outbox as soon as events can
// reach it.
func (s *Store) CreateWebhook(ctx context.Context, ws string, w storage.Webhook) (storage.Webhook, error) {
	if !validWS(ws) {
		return storage.Webhook{}, storage.ErrNotFound
	}
	if w.ID == "" {
		w.ID = storage.NewID()
	}
	if !validID(w.ID) || strings.Contains(w.ID, ":") {
		return storage.Webhook{}, fmt.Errorf("redisstore: invalid webhook id %q", w.ID)
	}
	t := now()
	w.CreatedAt, w.UpdatedAt = t, t
	rec, err := encodeWebhook(w)
	if err != nil {
		return storage.Webhook{}, err
	}
	if err := s.rdb.SAdd(ctx, s.webhookRegistryKey(), ws).Err(); err != nil {
		return storage.Webhook{}, s.wrap(err)
	}
	err = scriptWebhookCreate.Run(ctx, s.rdb, []string{s.wsKey(ws, "meta"), s.webhookSetKey(ws), s.webhookKey(ws, w.ID),
		s.outboxKey(ws)}, w.ID, rec, outboxGroup).Err()
	if err != nil {
		return storage.Webhook{}, s.wrap(err)
	}
	return w, nil
}

// GetWebhook reads one endpoint.
func (s *Store) GetWebhook(ctx context.Context, ws, id string) (storage.Webhook, error) {
	if !validWS(ws) || !validID(id) {
		return storage.Webhook{}, storage.ErrNotFound
	}
	b, err := s.rdb.Get(ctx, s.webhookKey(ws, id)).Bytes()
	if err != nil {
		return storage.Webhook{}, s.wrap(err)
	}
	return decodeWebhook(b)
}

// ListWebhooks reads the endpoint set and the records in one round trip
// each.
func (s *Store) ListWebhooks(ctx context.Context, ws string) ([]storage.Webhook, error) {
	if !validWS(ws) {
		return nil, storage.ErrNotFound
	}
	ids, err := s.rdb.SMembers(ctx, s.webhookSetKey(ws)).Result()
	if err != nil {
		return nil, s.wrap(err)
	}
	out := []storage.Webhook{}
	if len(ids) == 0 {
		return out, nil
	}
	slices.Sort(ids)
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.webhookKey(ws, id)
	}
	recs, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, s.wrap(err)
	}
	for _, r := range recs {
		b, ok := r.(string)
		if !ok {
			continue // deleted meanwhile
		}
		w, err := decodeWebhook([]byte(b))
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// UpdateWebhook is an optimistic read-modify-write of the record.
func (s *Store) UpdateWebhook(ctx context.Context, ws, id string, fn func(*storage.Webhook) error) (storage.Webhook, error) {
	if !validWS(ws) || !validID(id) {
		return storage.Webhook{}, storage.ErrNotFound
	}
	var out storage.Webhook
	err := s.watchUpdate(ctx, s.webhookKey(ws, id), func(b []byte) ([]byte, error) {
		w, err := decodeWebhook(b)
		if err != nil {
			return nil, err
		}
		if err := fn(&w); err != nil {
			return nil, callbackError{err}
		}
		w.ID, w.UpdatedAt = id, now()
		out = w
		return encodeWebhook(w)
	}, false)
	return out, err
}

// scriptWebhookDelete: KEYS = endpoint set, record, attempts; ARGV = id.
var scriptWebhookDelete = redis.NewScript(`
if redis.call('DEL', KEYS[2]) == 0 then return redis.error_reply('SJ_NOTFOUND webhook') end
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3])
return 1
`)

// DeleteWebhook removes the endpoint. The workspace stays in the registry
// (a dispatcher finds its outbox empty once no endpoint is left).
func (s *Store) DeleteWebhook(ctx context.Context, ws, id string) error {
	if !validWS(ws) || !validID(id) {
		return storage.ErrNotFound
	}
	return s.wrap(scriptWebhookDelete.Run(ctx, s.rdb, []string{s.webhookSetKey(ws), s.webhookKey(ws, id),
		s.attemptsKey(ws, id)}, id).Err())
}

// WebhookWorkspaces reads the registry.
func (s *Store) WebhookWorkspaces(ctx context.Context) ([]string, error) {
	ws, err := s.rdb.SMembers(ctx, s.webhookRegistryKey()).Result()
	if err != nil {
		return nil, s.wrap(err)
	}
	slices.Sort(ws)
	return ws, nil
}

// ReadOutbox claims entries idle longer than claimIdle (XAUTOCLAIM), then
// reads new ones (XREADGROUP, not blocking: a dispatcher reads many
// workspaces in turn). A workspace without an outbox has no entries.
func (s *Store) ReadOutbox(ctx context.Context, ws, consumer string, count int, claimIdle time.Duration) ([]storage.OutboxEntry, error) {
	if !validWS(ws) {
		return nil, storage.ErrNotFound
	}
	key := s.outboxKey(ws)
	var msgs []redis.XMessage
	if claimIdle > 0 {
		claimed, _, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: key, Group: outboxGroup,
			Consumer: consumer, MinIdle: claimIdle, Start: "0-0", Count: int64(count)}).Result()
		if err != nil && !isNoGroup(err) {
			return nil, s.wrap(err)
		}
		msgs = claimed
	}
	if rest := count - len(msgs); rest > 0 {
		res, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: outboxGroup, Consumer: consumer,
			Streams: []string{key, ">"}, Count: int64(rest), Block: -1}).Result()
		switch {
		case errors.Is(err, redis.Nil), isNoGroup(err):
		case err != nil:
			return nil, s.wrap(err)
		default:
			for _, st := range res {
				msgs = append(msgs, st.Messages...)
			}
		}
	}
	out := make([]storage.OutboxEntry, 0, len(msgs))
	for _, m := range msgs {
		id, _ := m.Values["e"].(string)
		raw, _ := m.Values["d"].(string)
		var w eventWire
		if err := json.Unmarshal([]byte(raw), &w); err != nil {
			return nil, fmt.Errorf("redisstore: decode outbox entry %s: %w", m.ID, err)
		}
		out = append(out, storage.OutboxEntry{ID: m.ID, Event: storage.Event{ID: id, Time: fromMicro(w.Time),
			Type: w.Type, Actor: w.Actor, UserID: w.User, AccountID: w.Account, Detail: w.Detail}})
	}
	return out, nil
}

// isNoGroup: the outbox (or its group) does not exist yet.
func isNoGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

// AckOutbox acknowledges and deletes entries in one transaction (one slot).
func (s *Store) AckOutbox(ctx context.Context, ws string, ids ...string) error {
	if !validWS(ws) {
		return storage.ErrNotFound
	}
	if len(ids) == 0 {
		return nil
	}
	key := s.outboxKey(ws)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, key, outboxGroup, ids...)
		p.XDel(ctx, key, ids...)
		return nil
	})
	return s.wrap(err)
}

// TakeOutboxDropped reads and deletes the dropped counter (GETDEL).
func (s *Store) TakeOutboxDropped(ctx context.Context, ws string) (int64, error) {
	if !validWS(ws) {
		return 0, storage.ErrNotFound
	}
	n, err := s.rdb.GetDel(ctx, s.outboxDroppedKey(ws)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, s.wrap(err)
}

// attemptWire is the stored form of an attempt (field "d").
type attemptWire struct {
	Time    int64  `json:"t"`
	Event   string `json:"e"`
	Type    string `json:"ty"`
	Attempt int    `json:"n"`
	Status  int    `json:"s,omitempty"`
	Latency int64  `json:"l"` // µs
	Error   string `json:"err,omitempty"`
}

// AppendWebhookAttempt adds to the endpoint's capped attempt stream, only
// while the endpoint exists (a delivery that ends after a delete records
// nothing).
func (s *Store) AppendWebhookAttempt(ctx context.Context, ws, id string, a storage.WebhookAttempt) error {
	if !validWS(ws) || !validID(id) {
		return storage.ErrNotFound
	}
	if a.Time.IsZero() {
		a.Time = now()
	}
	b, err := json.Marshal(attemptWire{Time: toMicro(a.Time), Event: a.EventID, Type: a.EventType, Attempt: a.Attempt,
		Status: a.Status, Latency: a.Latency.Microseconds(), Error: a.Error})
	if err != nil {
		return err
	}
	return s.wrap(scriptAttemptAppend.Run(ctx, s.rdb, []string{s.webhookKey(ws, id), s.attemptsKey(ws, id)},
		attemptsMax, b).Err())
}

// scriptAttemptAppend: KEYS = endpoint record, attempts; ARGV = cap,
// record.
var scriptAttemptAppend = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('SJ_NOTFOUND webhook') end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'd', ARGV[2])
`)

// ListWebhookAttempts reads the newest attempts (XREVRANGE).
func (s *Store) ListWebhookAttempts(ctx context.Context, ws, id string, limit int) ([]storage.WebhookAttempt, error) {
	if !validWS(ws) || !validID(id) {
		return nil, storage.ErrNotFound
	}
	out := []storage.WebhookAttempt{}
	if limit <= 0 {
		return out, nil
	}
	msgs, err := s.rdb.XRevRangeN(ctx, s.attemptsKey(ws, id), "+", "-", int64(limit)).Result()
	if err != nil {
		return nil, s.wrap(err)
	}
	for _, m := range msgs {
		raw, _ := m.Values["d"].(string)
		var w attemptWire
		if err := json.Unmarshal([]byte(raw), &w); err != nil {
			return nil, fmt.Errorf("redisstore: decode attempt: %w", err)
		}
		out = append(out, storage.WebhookAttempt{Time: fromMicro(w.Time), EventID: w.Event, EventType: w.Type,
			Attempt: w.Attempt, Status: w.Status, Latency: time.Duration(w.Latency) * time.Microsecond, Error: w.Error})
	}
	return out, nil
}

// receivedKey is the workspace's list of deliveries the demo receiver got.
func (s *Store) receivedKey(ws string) string { return s.wsKey(ws, "demo:received") }

// receivedWire is the stored form of a received delivery.
type receivedWire struct {
	V        int    `json:"v"`
	ID       string `json:"id"`
	Type     string `json:"ty"`
	Time     int64  `json:"t"`
	Verified bool   `json:"ok"`
	Problem  string `json:"p,omitempty"`
	Body     string `json:"b"`
}

// scriptReceivedAppend: KEYS = meta, list; ARGV = record, cap.
var scriptReceivedAppend = redis.NewScript(luaPushCapped + `
return pushCapped(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
`)

// AppendReceivedWebhook pushes onto the capped list in one script.
func (s *Store) AppendReceivedWebhook(ctx context.Context, ws string, r storage.ReceivedWebhook) error {
	if !validWS(ws) {
		return storage.ErrNotFound
	}
	if r.Time.IsZero() {
		r.Time = now()
	}
	b, err := json.Marshal(receivedWire{V: 1, ID: r.ID, Type: r.Type, Time: toMicro(r.Time), Verified: r.Verified,
		Problem: r.Problem, Body: r.Body})
	if err != nil {
		return err
	}
	return s.wrap(scriptReceivedAppend.Run(ctx, s.rdb, []string{s.wsKey(ws, "meta"), s.receivedKey(ws)}, b,
		storage.ReceivedWebhooksKept).Err())
}

// ListReceivedWebhooks reads the head of the list (LRANGE).
func (s *Store) ListReceivedWebhooks(ctx context.Context, ws string, limit int) ([]storage.ReceivedWebhook, error) {
	if !validWS(ws) {
		return nil, storage.ErrNotFound
	}
	out := []storage.ReceivedWebhook{}
	if limit <= 0 {
		return out, nil
	}
	recs, err := s.rdb.LRange(ctx, s.receivedKey(ws), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, s.wrap(err)
	}
	for _, rec := range recs {
		var w receivedWire
		if err := json.Unmarshal([]byte(rec), &w); err != nil || w.V != 1 {
			return nil, fmt.Errorf("redisstore: decode received webhook: %v (version %d)", err, w.V)
		}
		out = append(out, storage.ReceivedWebhook{ID: w.ID, Type: w.Type, Time: fromMicro(w.Time), Verified: w.Verified,
			Problem: w.Problem, Body: w.Body})
	}
	return out, nil
}
