// Package storage holds scimjit's data model (workspaces, accounts,
// memberships as SCIM users, groups, SCIM token hashes, events, sessions,
// verifications), the Store interface every backend implements, and the
// sentinel errors of that contract. The Redis backend lives in
// storage/redisstore; storage/conformance is the test suite every backend
// must pass; storage/redistest starts a real redis-server for tests.
package storage
