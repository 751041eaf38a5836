package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

// workspaceWire is the stored form of a workspace (key {ws:<id>}:meta).
// It spells out every setting instead of embedding storage.Settings, so a
// rename in the Go types cannot silently change the stored format;
// TestEveryFieldRoundTrips fails when a field is added to the model but
// not here.
type workspaceWire struct {
	V        int          `json:"v"`
	ID       string       `json:"id"`
	Name     string       `json:"name"`
	Settings settingsWire `json:"settings"`
	Created  int64        `json:"c"`
	Updated  int64        `json:"u"`
	Version  int64        `json:"ver"`
}

type settingsWire struct {
	JIT         jitWire          `json:"jit"`
	CustomRoles []string         `json:"customRoles,omitempty"`
	IdP         idpWire          `json:"idp"`
	Roles       roleSettingsWire `json:"roles"`
	Login       loginWire        `json:"login,omitzero"`
}

type loginWire struct {
	EmailDomains []string `json:"emailDomains,omitempty"`
}

// roleSettingsWire is storage.RoleSettings.
type roleSettingsWire struct {
	GroupRules    []groupRuleWire `json:"groupRules,omitempty"`
	GroupRulesWin bool            `json:"groupRulesWin,omitempty"`
	AppRoles      bool            `json:"appRoles,omitempty"`
}

type groupRuleWire struct {
	Group string `json:"group"`
	Dev   string `json:"dev,omitempty"`
	Test  string `json:"test,omitempty"`
	Prod  string `json:"prod,omitempty"`
}

type jitWire struct {
	Enabled         bool   `json:"enabled,omitempty"`
	ExistingAccount string `json:"existingAccount,omitempty"`
	DefaultRole     string `json:"defaultRole,omitempty"`
	RoleSync        string `json:"roleSync,omitempty"`
	UnknownRole     string `json:"unknownRole,omitempty"`
}

type idpWire struct {
	MetadataXML       string `json:"metadataXml,omitempty"`
	EntityID          string `json:"entityId,omitempty"`
	AllowIdPInitiated bool   `json:"allowIdpInitiated,omitempty"`

	AllowSHA1 bool `json:"allowSha1,omitempty"`
	// MetadataURL and Refresh: idp.metadataURL and its download state
	// (storage.MetadataRefresh), absent for a workspace without a URL.
	MetadataURL string               `json:"metadataUrl,omitempty"`
	Refresh     *metadataRefreshWire `json:"mdRefresh,omitempty"`
}

// metadataRefreshWire is storage.MetadataRefresh; times in Unix
// microseconds (0 = zero time).
type metadataRefreshWire struct {
	Fetched   int64  `json:"f,omitempty"`
	Checked   int64  `json:"c,omitempty"`
	LastError string `json:"err,omitempty"`
	NextDue   int64  `json:"due,omitempty"`
}

func encodeMetadataRefresh(r storage.MetadataRefresh) *metadataRefreshWire {
	if r == (storage.MetadataRefresh{}) {
		return nil
	}
	return &metadataRefreshWire{Fetched: toMicro(r.FetchedAt), Checked: toMicro(r.CheckedAt),
		LastError: r.LastError, NextDue: toMicro(r.NextDue)}
}

func decodeMetadataRefresh(w *metadataRefreshWire) storage.MetadataRefresh {
	if w == nil {
		return storage.MetadataRefresh{}
	}
	return storage.MetadataRefresh{FetchedAt: fromMicro(w.Fetched), CheckedAt: fromMicro(w.Checked),
		LastError: w.LastError, NextDue: fromMicro(w.NextDue)}
}

func encodeWorkspace(w storage.Workspace) ([]byte, error) {
	st := w.Settings
	return json.Marshal(workspaceWire{V: 1, ID: w.ID, Name: w.Name,
		Settings: settingsWire{
			JIT: jitWire{Enabled: st.JIT.Enabled, ExistingAccount: st.JIT.ExistingAccount,
				DefaultRole: st.JIT.DefaultRole, RoleSync: st.JIT.RoleSync, UnknownRole: st.JIT.UnknownRole},
			CustomRoles: st.CustomRoles,
			IdP: idpWire{MetadataXML: st.IdP.MetadataXML, EntityID: st.IdP.EntityID,
				AllowIdPInitiated: st.IdP.AllowIdPInitiated,
				AllowSHA1:         st.IdP.AllowSHA1,
				MetadataURL:       st.IdP.MetadataURL, Refresh: encodeMetadataRefresh(st.IdP.MetadataRefresh)},
			Roles: encodeRoleSettings(st.Roles),
			Login: loginWire{EmailDomains: st.Login.EmailDomains},
		},
		Created: toMicro(w.CreatedAt), Updated: toMicro(w.UpdatedAt), Version: w.Version})
}

func decodeWorkspace(b []byte) (storage.Workspace, error) {
	var w workspaceWire
	if err := json.Unmarshal(b, &w); err != nil {
		return storage.Workspace{}, fmt.Errorf("redisstore: decode workspace: %w", err)
	}
	if w.V != 1 {
		return storage.Workspace{}, fmt.Errorf("redisstore: workspace record version %d unknown", w.V)
	}
	st := w.Settings
	return storage.Workspace{ID: w.ID, Name: w.Name,
		Settings: storage.Settings{
			JIT: storage.JITSettings{Enabled: st.JIT.Enabled, ExistingAccount: st.JIT.ExistingAccount,
				DefaultRole: st.JIT.DefaultRole, RoleSync: st.JIT.RoleSync, UnknownRole: st.JIT.UnknownRole},
			CustomRoles: st.CustomRoles,
			IdP: storage.IdPSettings{MetadataXML: st.IdP.MetadataXML, EntityID: st.IdP.EntityID,
				AllowIdPInitiated: st.IdP.AllowIdPInitiated,
				AllowSHA1:         st.IdP.AllowSHA1,
				MetadataURL:       st.IdP.MetadataURL, MetadataRefresh: decodeMetadataRefresh(st.IdP.Refresh)},
			Roles: decodeRoleSettings(st.Roles),
			Login: storage.LoginSettings{EmailDomains: st.Login.EmailDomains},
		},
		CreatedAt: fromMicro(w.Created), UpdatedAt: fromMicro(w.Updated), Version: w.Version}, nil
}

// CreateWorkspace writes the workspace record with SET NX (the record is the
// authority), then adds the id to the registry sorted set. A crash between
// the two leaves a workspace that works but is not listed; retrying the
// create re-adds it to the registry before answering "already exists".
func (s *Store) CreateWorkspace(ctx context.Context, ws storage.Workspace) (storage.Workspace, error) {
	if !validWS(ws.ID) {
		return storage.Workspace{}, fmt.Errorf("redisstore: invalid workspace id %q", ws.ID)
	}
	t := now()
	if ws.CreatedAt.IsZero() {
		ws.CreatedAt = t
	}
	ws.CreatedAt = ws.CreatedAt.UTC().Truncate(time.Microsecond)
	ws.UpdatedAt = ws.CreatedAt
	ws.Version = 1
	b, err := encodeWorkspace(ws)
	if err != nil {
		return storage.Workspace{}, err
	}
	ok, err := s.rdb.SetNX(ctx, s.wsKey(ws.ID, "meta"), b, 0).Result()
	if err != nil {
		return storage.Workspace{}, s.wrap(err)
	}
	if err := s.rdb.ZAdd(ctx, s.registryKey(), redis.Z{Member: ws.ID}).Err(); err != nil {
		return storage.Workspace{}, s.wrap(err)
	}
	if !ok {
		return storage.Workspace{}, &storage.ConflictError{Field: "workspace"}
	}
	// A new workspace's filter and name indexes are complete from its
	// first member on (filters.go); a crash before this leaves them to
	// check --fix.
	if err := s.rdb.Set(ctx, s.wsKey(ws.ID, "ix:ufv"), indexesBuilt, 0).Err(); err != nil {
		return storage.Workspace{}, s.wrap(err)
	}
	if err := s.syncDomainIndex(ctx, ws.ID, nil); err != nil {
		return storage.Workspace{}, err
	}
	return ws, nil
}

// GetWorkspace reads one workspace.
func (s *Store) GetWorkspace(ctx context.Context, id string) (storage.Workspace, error) {
	if !validWS(id) {
		return storage.Workspace{}, storage.ErrNotFound
	}
	rec, err := s.rdb.Get(ctx, s.wsKey(id, "meta")).Result()
	if err != nil {
		return storage.Workspace{}, s.wrap(err)
	}
	return decodeWorkspaceCached(rec)
}

// ListWorkspaces reads the registry and then each record (pipelined; the
// records live in different slots). Registry entries whose record is gone
// (a delete that crashed half-way) are skipped.
func (s *Store) ListWorkspaces(ctx context.Context) ([]storage.Workspace, error) {
	ids, err := s.rdb.ZRange(ctx, s.registryKey(), 0, -1).Result()
	if err != nil {
		return nil, s.wrap(err)
	}
	out, err := s.readWorkspaces(ctx, ids)
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// readWorkspaces reads the records of ids in one pipeline, in the order of
// ids, leaving out those that no longer exist.
func (s *Store) readWorkspaces(ctx context.Context, ids []string) ([]storage.Workspace, error) {
	out := []storage.Workspace{}
	if len(ids) == 0 {
		return out, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, s.wsKey(id, "meta"))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.wrap(err)
	}
	for _, c := range cmds {
		rec, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, s.wrap(err)
		}
		w, err := decodeWorkspaceCached(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// UpdateWorkspace is an optimistic WATCH/MULTI read-modify-write of the one
// record key; fn may run more than once. The email-domain index (another
// slot) is brought in step after the write.
func (s *Store) UpdateWorkspace(ctx context.Context, id string, fn func(*storage.Workspace) error) (storage.Workspace, error) {
	if !validWS(id) {
		return storage.Workspace{}, storage.ErrNotFound
	}
	var result, before storage.Workspace
	err := s.watchUpdate(ctx, s.wsKey(id, "meta"), func(b []byte) ([]byte, error) {
		w, err := decodeWorkspace(b)
		if err != nil {
			return nil, err
		}
		old := w
		w.Settings.Login.EmailDomains = slices.Clone(w.Settings.Login.EmailDomains)
		w.Settings.CustomRoles = slices.Clone(w.Settings.CustomRoles)
		if err := fn(&w); err != nil {
			return nil, callbackError{err}
		}
		w.ID, w.CreatedAt = old.ID, old.CreatedAt
		w.Version = old.Version + 1
		w.UpdatedAt = now()
		result, before = w, old
		return encodeWorkspace(w)
	}, setKeep(false))
	if err != nil {
		return storage.Workspace{}, err
	}
	if err := s.syncDomainIndex(ctx, id, before.Settings.Login.EmailDomains); err != nil {
		return storage.Workspace{}, err
	}
	return result, nil
}

// watchUpdate is an optimistic read-modify-write of one key: it reads the
// key under WATCH, passes its value to change and writes what change
// returns in MULTI/EXEC (SET, or SET KEEPTTL with keepTTL); a write by
// someone else in between makes it start again (with backoff), at most
// maxRetries times, then storage.ErrConflictRetries. change may run more
// than once; an error it wraps in callbackError comes back unwrapped, a
// missing key is storage.ErrNotFound.
func (s *Store) watchUpdate(ctx context.Context, key string, change func([]byte) ([]byte, error), keepTTL setKeep) error {
	for i := 0; i < maxRetries; i++ {
		if err := backoff(ctx, i); err != nil {
			return err
		}
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			b, err := tx.Get(ctx, key).Bytes()
			if err != nil {
				return err
			}
			nb, err := change(b)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.SetArgs(ctx, key, nb, redis.SetArgs{KeepTTL: bool(keepTTL)})
				return nil
			})
			return err
		}, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		var ce callbackError
		if errors.As(err, &ce) {
			return ce.err
		}
		if errors.Is(err, storage.ErrNotFound) {
			return err
		}
		return s.wrap(err)
	}
	return storage.ErrConflictRetries
}

// setKeep says whether watchUpdate's SET keeps the key's TTL.
type setKeep bool

// callbackError carries an error returned by a caller's update callback
// through go-redis untouched.
type callbackError struct{ err error }

func (c callbackError) Error() string { return c.err.Error() }
func (c callbackError) Unwrap() error { return c.err }

// DeleteWorkspace removes everything the workspace owns in one Lua script
// (one slot), then the workspace from its members' account back-pointers,
// then from the registry; each of the last two steps restores what a
// concurrent re-create of the same id has written meanwhile. A crash after
// the script leaves only stale back-pointers and a registry entry that
// readers already ignore. TTL keys (temp values, replay cache) are not
// indexed and are left to expire.
func (s *Store) DeleteWorkspace(ctx context.Context, id string) error {
	if !validWS(id) {
		return storage.ErrNotFound
	}
	// The domains to take out of the index afterwards; a crash before
	// that leaves index entries that readers ignore (no record lists them).
	var domains []string
	if b, err := s.rdb.Get(ctx, s.wsKey(id, "meta")).Bytes(); err == nil {
		if w, err := decodeWorkspace(b); err == nil {
			domains = w.Settings.Login.EmailDomains
		}
	} else if !errors.Is(err, redis.Nil) {
		return s.wrap(err)
	}
	res, err := scriptWorkspaceDelete.Run(ctx, s.rdb, []string{s.wsKey(id, "meta")}, s.wsPrefix(id), now().Unix()/3600).StringSlice()
	if err != nil {
		return s.wrap(err)
	}
	var accts []string
	for _, acct := range res {
		if validID(acct) {
			accts = append(accts, acct)
		}
	}
	if len(accts) > 0 {
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, acct := range accts {
				p.HDel(ctx, s.acctKey(acct, "a"), acctWSPrefix+id)
			}
			return nil
		}); err != nil {
			return s.wrap(err)
		}
		// A workspace re-created with the same id may already have a new
		// membership of one of these accounts: restore its back-pointer.
		again, err := s.rdb.HMGet(ctx, s.wsKey(id, "ix:ua"), accts...).Result()
		if err != nil {
			return s.wrap(err)
		}
		for i, v := range again {
			if v == nil {
				continue
			}
			if err := s.rdb.HSet(ctx, s.acctKey(accts[i], "a"), acctWSPrefix+id, "1").Err(); err != nil {
				return s.wrap(err)
			}
		}
	}
	if err := s.syncDomainIndex(ctx, id, domains); err != nil {
		return err
	}
	if err := s.rdb.ZRem(ctx, s.registryKey(), id).Err(); err != nil {
		return s.wrap(err)
	}
	if err := s.rdb.SRem(ctx, s.webhookRegistryKey(), id).Err(); err != nil {
		return s.wrap(err)
	}
	// Same for a re-created workspace's registry entry.
	if n, err := s.rdb.Exists(ctx, s.wsKey(id, "meta")).Result(); err != nil {
		return s.wrap(err)
	} else if n == 1 {
		return s.wrap(s.rdb.ZAdd(ctx, s.registryKey(), redis.Z{Member: id}).Err())
	}
	return nil
}

// tokenWire is the stored form of a SCIM token (field of {ws:<id>}:tokens).
type tokenWire struct {
	V       int    `json:"v"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Hash    []byte `json:"h"`
	Created int64  `json:"c"`
}

// CreateSCIMToken adds a token hash to the workspace's token hash; the
// workspace must exist (checked in the same script).
func (s *Store) CreateSCIMToken(ctx context.Context, ws string, t storage.SCIMToken) error {
	if !validWS(ws) {
		return storage.ErrNotFound
	}
	if !validID(t.ID) {
		return fmt.Errorf("redisstore: invalid token id %q", t.ID)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now()
	}
	b, err := json.Marshal(tokenWire{V: 1, ID: t.ID, Name: t.Name, Hash: t.Hash, Created: toMicro(t.CreatedAt)})
	if err != nil {
		return err
	}
	return s.wrap(scriptTokenCreate.Run(ctx, s.rdb,
		[]string{s.wsKey(ws, "meta"), s.wsKey(ws, "tokens")}, t.ID, b).Err())
}

// ListSCIMTokens returns the workspace's tokens ordered by creation time.
func (s *Store) ListSCIMTokens(ctx context.Context, ws string) ([]storage.SCIMToken, error) {
	if !validWS(ws) {
		return nil, storage.ErrNotFound
	}
	var recs, used *redis.MapStringStringCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		recs = p.HGetAll(ctx, s.wsKey(ws, "tokens"))
		used = p.HGetAll(ctx, s.wsKey(ws, "tokens:used"))
		return nil
	}); err != nil {
		return nil, s.wrap(err)
	}
	out := make([]storage.SCIMToken, 0, len(recs.Val()))
	for _, v := range recs.Val() {
		var w tokenWire
		if err := json.Unmarshal([]byte(v), &w); err != nil {
			return nil, fmt.Errorf("redisstore: decode token: %w", err)
		}
		t := storage.SCIMToken{ID: w.ID, Name: w.Name, Hash: w.Hash, CreatedAt: fromMicro(w.Created)}
		if at, err := strconv.ParseInt(used.Val()[w.ID], 10, 64); err == nil {
			t.LastUsed = fromMicro(at)
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// RevokeSCIMToken deletes one token.
func (s *Store) RevokeSCIMToken(ctx context.Context, ws, id string) error {
	if !validWS(ws) {
		return storage.ErrNotFound
	}
	var del *redis.IntCmd
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.HDel(ctx, s.wsKey(ws, "tokens"), id)
		p.HDel(ctx, s.wsKey(ws, "tokens:used"), id)
		return nil
	}); err != nil {
		return s.wrap(err)
	}
	if del.Val() == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// TouchSCIMToken keeps the latest use time of a live token (µs) in
// {ws:<id>}:tokens:used, in one script that checks the token exists.
func (s *Store) TouchSCIMToken(ctx context.Context, ws, id string, at time.Time) error {
	if !validWS(ws) || !validID(id) {
		return storage.ErrNotFound
	}
	return s.wrap(scriptTokenTouch.Run(ctx, s.rdb, []string{s.wsKey(ws, "tokens"), s.wsKey(ws, "tokens:used")},
		id, toMicro(at)).Err())
}

// wsDecodeCache maps the SHA-256 of a workspace record's exact bytes to
// its decoding, so that the requests that read a workspace (every sign-in,
// every SCIM write) do not decode the same record, with its IdP metadata
// of a few kB, each time. Keyed by content, it never returns a stale
// workspace. It holds at most wsDecodeCacheMax workspaces; when full, an
// arbitrary entry makes room.
var wsDecodeCache = struct {
	sync.Mutex
	m map[[sha256.Size]byte]storage.Workspace
}{m: map[[sha256.Size]byte]storage.Workspace{}}

const wsDecodeCacheMax = 256

func decodeWorkspaceCached(rec string) (storage.Workspace, error) {
	sum := sha256.Sum256([]byte(rec))
	wsDecodeCache.Lock()
	w, ok := wsDecodeCache.m[sum]
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
		wsDecodeCache.m[sum] = w
		wsDecodeCache.Unlock()
	}
	// The caller gets its own slices.
	w.Settings.CustomRoles = slices.Clone(w.Settings.CustomRoles)
	w.Settings.Login.EmailDomains = slices.Clone(w.Settings.Login.EmailDomains)
	w.Settings.Roles.GroupRules = slices.Clone(w.Settings.Roles.GroupRules)
	return w, nil
}

func encodeRoleSettings(r storage.RoleSettings) roleSettingsWire {
	w := roleSettingsWire{GroupRulesWin: r.GroupRulesWin, AppRoles: r.AppRoles}
	for _, g := range r.GroupRules {
		w.GroupRules = append(w.GroupRules, groupRuleWire{Group: g.Group, Dev: g.Roles.Dev, Test: g.Roles.Test, Prod: g.Roles.Prod})
	}
	return w
}

func decodeRoleSettings(w roleSettingsWire) storage.RoleSettings {
	r := storage.RoleSettings{GroupRulesWin: w.GroupRulesWin, AppRoles: w.AppRoles}
	for _, g := range w.GroupRules {
		r.GroupRules = append(r.GroupRules, storage.GroupRule{Group: g.Group,
			Roles: storage.Roles{Dev: g.Dev, Test: g.Test, Prod: g.Prod}})
	}
	return r
}
