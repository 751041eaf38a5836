package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

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

// activityTTLSeconds keeps an hour's provisioning counts for the window
// of SCIMActivity and an hour more. It is set when a count starts (a
// field's first HINCRBY), not at every count: one command per counted
// write.
const activityTTLSeconds = "90000"

// activityKey is the provisioning counts of ws in the hour of t:
// {ws:<id>}:scim:counts:<hours since the epoch>.
func (s *Store) activityKey(ws string, t time.Time) string {
	return s.wsKey(ws, "scim:counts:"+strconv.FormatInt(t.Unix()/3600, 10))
}

// scimErrorWire is the stored form of a storage.SCIMRequestError (an
// element of {ws:<id>}:scim:errors).
type scimErrorWire struct {
	V        int    `json:"v"`
	Time     int64  `json:"t"`
	Method   string `json:"m"`
	Route    string `json:"r"`
	Status   int    `json:"s"`
	SCIMType string `json:"st,omitempty"`
	Detail   string `json:"d,omitempty"`
}

// scriptSCIMError: KEYS = meta, errors list, the hour's counts; ARGV =
// record, status, cap. Keeps the newest cap errors and counts the status.
var scriptSCIMError = redis.NewScript(luaPushCapped + `
local r = pushCapped(KEYS[1], KEYS[2], ARGV[1], ARGV[3])
if r ~= 1 then return r end
if redis.call('HINCRBY', KEYS[3], 'error.' .. ARGV[2], 1) == 1 then
  redis.call('EXPIRE', KEYS[3], ` + activityTTLSeconds + `)
end
return 1
`)

// RecordSCIMError keeps e in the workspace's last errors and counts it,
// in one script.
func (s *Store) RecordSCIMError(ctx context.Context, ws string, e storage.SCIMRequestError) error {
	if !validWS(ws) {
		return storage.ErrNotFound
	}
	if e.Time.IsZero() {
		e.Time = now()
	}
	b, err := json.Marshal(scimErrorWire{V: 1, Time: toMicro(e.Time), Method: e.Method, Route: e.Route,
		Status: e.Status, SCIMType: e.SCIMType, Detail: e.Detail})
	if err != nil {
		return err
	}
	return s.wrap(scriptSCIMError.Run(ctx, s.rdb,
		[]string{s.wsKey(ws, "meta"), s.wsKey(ws, "scim:errors"), s.activityKey(ws, e.Time)},
		b, e.Status, storage.MaxSCIMErrors).Err())
}

// SCIMActivity reads the hours of the window and the last errors in one
// pipeline.
func (s *Store) SCIMActivity(ctx context.Context, ws string, at time.Time) (storage.SCIMActivity, error) {
	out := storage.SCIMActivity{Counts: map[string]int64{}, Errors: []storage.SCIMRequestError{}}
	if !validWS(ws) {
		return out, nil
	}
	hours := int(storage.SCIMActivityWindow / time.Hour)
	counts := make([]*redis.MapStringStringCmd, hours)
	var errs *redis.StringSliceCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range counts {
			counts[i] = p.HGetAll(ctx, s.activityKey(ws, at.Add(-time.Duration(i)*time.Hour)))
		}
		errs = p.LRange(ctx, s.wsKey(ws, "scim:errors"), 0, storage.MaxSCIMErrors-1)
		return nil
	}); err != nil {
		return out, s.wrap(err)
	}
	for _, c := range counts {
		for k, v := range c.Val() {
			n, _ := strconv.ParseInt(v, 10, 64)
			out.Counts[k] += n
		}
	}
	for _, rec := range errs.Val() {
		var w scimErrorWire
		if err := json.Unmarshal([]byte(rec), &w); err != nil || w.V != 1 {
			return out, fmt.Errorf("redisstore: decode scim error record: %v", err)
		}
		out.Errors = append(out.Errors, storage.SCIMRequestError{Time: fromMicro(w.Time), Method: w.Method,
			Route: w.Route, Status: w.Status, SCIMType: w.SCIMType, Detail: w.Detail})
	}
	return out, nil
}

// eventArgs are the ARGV of the event-appending Lua (luaAppendEvents) for
// out (encoded by eventsArgs): the two streams' caps, the number of
// events, then per event its stream ("m" or "l") and record.
func eventArgs(pairs []any) []any {
	return append([]any{eventStreamMax, loginStreamMax, len(pairs) / 2}, pairs...)
}

// eventKeys are the keys of the event-appending Lua (after the keys of
// its own): the two event streams of ws, its webhook endpoint set, its
// webhook outbox, the outbox's dropped counter and the provisioning counts of this hour.
func (s *Store) eventKeys(ws string) []string {
	return []string{mainEvents.key(s, ws), loginEvents.key(s, ws), s.webhookSetKey(ws), s.outboxKey(ws),
		s.outboxDroppedKey(ws), s.activityKey(ws, now())}
}

// scriptEventsAppend: KEYS = meta, eventKeys; ARGV =
// eventArgs. Returns {1, entry ids...} in order; SJ_NOTFOUND without the
// workspace.
var scriptEventsAppend = redis.NewScript(luaAppendEvents + `
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
return appendEvents(KEYS, 2, ARGV, 1)
`)

// AppendEvents appends events, each to the stream streamFor chooses, in
// one script (one round trip; both streams share the workspace's slot).
func (s *Store) AppendEvents(ctx context.Context, ws string, events ...storage.Event) ([]storage.Event, error) {
	out, pairs, err := s.eventsArgs(ws, events)
	if err != nil || len(out) == 0 {
		return out, err
	}
	res, err := scriptEventsAppend.Run(ctx, s.rdb, append([]string{s.wsKey(ws, "meta")}, s.eventKeys(ws)...),
		eventArgs(pairs)...).Slice()
	if err != nil {
		return nil, s.wrap(err)
	}
	return eventsResult(out, res)
}

// eventsArgs validates ws and encodes events: out are the events with
// their times set, pairs the stream ("m" or "l", streamFor) and record of
// each, for eventArgs.
func (s *Store) eventsArgs(ws string, events []storage.Event) ([]storage.Event, []any, error) {
	if !validWS(ws) {
		return nil, nil, storage.ErrNotFound
	}
	out := make([]storage.Event, len(events))
	pairs := make([]any, 0, 2*len(events))
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
		stream := "m"
		switch {
		case streamFor(e.Type) == loginEvents:
			stream = "l"
		case strings.HasPrefix(e.Type, "scim."):
			stream += e.Type // counted in the provisioning summary
		}
		pairs = append(pairs, stream, b)
	}
	return out, pairs, nil
}

// eventsResult puts the entry ids of a luaAppendEvents reply {1, ids...}
// into out, as event ids (with the stream's suffix). A reply without ids
// (a re-sent write whose events were appended before) leaves them empty.
func eventsResult(out []storage.Event, res []any) ([]storage.Event, error) {
	if len(res) <= 1 {
		return out, nil
	}
	if len(res)-1 != len(out) {
		return nil, fmt.Errorf("redisstore: appended %d events, want %d", len(res)-1, len(out))
	}
	for i := range out {
		id, _ := res[i+1].(string)
		out[i].ID = id + streamFor(out[i].Type).suffix
	}
	return out, nil
}
