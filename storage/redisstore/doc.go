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
// with a "v" field) that are separate from the storage types. The key
// layout, the atomicity of each operation and the crash ordering of the
// few cross-slot operations are documented in docs/storage.md.
package redisstore
