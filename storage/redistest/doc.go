// Package redistest starts a real redis-server for tests: a fresh process
// per call on a free loopback port, without persistence, stopped when the
// test ends. It never uses a Redis that is already running on the machine.
//
// When redis-server is not on PATH the test is skipped, unless the
// environment sets SCIMJIT_REQUIRE_REDIS=1 (CI), which makes it fail.
package redistest
