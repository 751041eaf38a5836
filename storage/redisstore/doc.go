// Package redisstore is the Redis implementation of storage.Store, built on
// go-redis v9's UniversalClient so one code path serves a single server,
// Sentinel, Cluster and the embedded in-process server (miniredis) that
// scimjit uses when no Redis URL is configured.
//
// Every key a workspace owns carries the hash tag {ws:<id>}, so all keys of
// one workspace live in one Cluster slot and the Lua scripts that enforce
// uniqueness and membership touch a single slot. Global records (accounts,
// the email index, sessions, verifications, the mail outbox, rate limits)
// have their own tags. Records are stored as versioned wire structs (JSON
// with a "v" field) that are separate from the storage types. Every write
// is safe to re-send: it recognises its own earlier effect. The key layout,
// the client's timeouts and retries, the atomicity of each operation and
// the crash ordering of the few cross-slot operations are documented in
// docs/storage.md.
//
// Where things are:
//
//   - store.go: Open (Dial, then Connect), New, the client settings, error
//     mapping, key builders.
//   - logger.go: SetLogger, go-redis' own log lines through slog.
//   - embedded.go: OpenEmbedded (miniredis on a loopback port).
//   - scripts.go: the Lua scripts (the event append's too).
//   - workspaces.go, accounts.go, users.go, groups.go: the records and
//     their indexes.
//   - signin.go: the storage.SignIns operations (ReceiveResponse,
//     AcceptLogin, LoginLookup, CreateJITUser, StartSession).
//   - events.go: the two event streams of a workspace, appending and
//     listing.
//   - ephemeral.go: sessions, verifications, rate limits, the replay cache,
//     temp values and the mail outbox.
//   - codec.go, codec_user.go: compression and the fast decoding of user
//     records.
//   - check.go: Check, scimjit check's walk and repairs.
package redisstore
