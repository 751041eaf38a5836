// Package redistest starts real Redis processes for tests: a fresh
// redis-server per call on a free loopback port, without persistence,
// killed when the test ends. It never uses a Redis that is already running
// on the machine.
//
// Addr and NewStore give a single server; ClusterAddr a one-node Redis
// Cluster (enforces CROSSSLOT), ClusterAddrs a cluster of several masters,
// SentinelAddr a master watched by a Redis Sentinel.
//
// When redis-server is not on PATH the test is skipped, unless the
// environment sets SCIMJIT_REQUIRE_REDIS=1 (CI), which makes it fail.
package redistest
