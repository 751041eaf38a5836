// Package redistest starts real Redis processes for tests: a fresh
// redis-server per call on a free loopback port, without persistence,
// killed when the test ends. It never uses a Redis that is already running
// on the machine: every server requires a random password of its own, and
// the helper only hands out a server once it has accepted that password,
// so a server some other process started on the same port is never taken
// for it. Every client must therefore use the password: Server.URL,
// Server.Options and Server.Client carry it.
//
// Start and NewStore give a single server (OpenStore a store on a server
// the test also holds); StartCluster a Redis Cluster of one node (enforces
// CROSSSLOT) or several masters; StartSentinel a master watched by a Redis
// Sentinel. StartFaultProxy puts a proxy in front of a server that cuts
// or delays traffic on demand, for tests of a stalling or breaking Redis.
//
// When redis-server is not on PATH the test is skipped, unless the
// environment sets SCIMJIT_REQUIRE_REDIS=1 (CI), which makes it fail.
package redistest
