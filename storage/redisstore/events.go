package redisstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

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
