// Package conformance is the test suite every storage.Store backend must
// pass. RunConformance takes a constructor and runs each case on a fresh
// store: CRUD of every record type, uniqueness under concurrency, paging,
// optimistic and delta updates under concurrency, version preconditions,
// TTL expiry in real time, single-use tokens, the rate limiter (bursts,
// no double burst at a window boundary, independent keys, races), the
// merged event streams and their cursor, the sign-in operations, writes
// re-sent and recognised, Unicode-folded keys, and in every case a check that
// another workspace sees nothing of what the case did.
//
// It is an ordinary package (not a _test file) so that each backend's
// tests can import it.
package conformance
