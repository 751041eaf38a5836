// Package storage holds scimjit's data model (workspaces, accounts,
// memberships as SCIM users, groups, SCIM token hashes, events, sessions,
// verifications), the Store interface every backend implements, the
// SignIns interface of the SAML sign-in's composite operations, and the
// sentinel errors of that contract. FoldKey is the one rule by which
// userNames and emails are compared. The Redis backend lives in
// storage/redisstore; storage/conformance is the test suite every backend
// must pass; storage/redistest starts a real redis-server for tests, and a
// fault-injecting proxy in front of one.
//
// Where things are: storage.go (the model and the interfaces), id.go (ids,
// workspace slugs, FoldKey).
package storage
