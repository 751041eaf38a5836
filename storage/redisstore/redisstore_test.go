package redisstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/conformance"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// TestConformanceRedis runs the suite against a real redis-server (one per
// case, spawned by redistest).
func TestConformanceRedis(t *testing.T) {
	t.Parallel()
	conformance.RunConformance(t, func(t *testing.T) storage.Store { return redistest.NewStore(t) })
}

// TestConformanceEmbedded runs the suite against the embedded server that
// scimjit uses when no Redis URL is configured.
func TestConformanceEmbedded(t *testing.T) {
	t.Parallel()
	conformance.RunConformance(t, func(t *testing.T) storage.Store {
		s, err := redisstore.OpenEmbedded(context.Background(), nil)
		if err != nil {
			t.Fatalf("open embedded: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestConformanceCluster runs the suite through the Cluster client against
// a one-node Redis Cluster, which refuses any multi-key command,
// transaction or script whose keys span hash slots (CROSSSLOT).
// The cases share one cluster (it takes about two seconds to come up) and
// are kept apart by a key prefix each.
func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 1)
	var n atomic.Int64
	conformance.RunConformance(t, func(t *testing.T) storage.Store {
		c := redis.NewClusterClient(cl.Options())
		s := redisstore.New(c, fmt.Sprintf("case%d", n.Add(1)))
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestConformanceSentinel runs the suite through Open with a Sentinel
// (MasterName + sentinel address) and the failover client. The cases share
// the master and are kept apart by a key prefix each.
func TestConformanceSentinel(t *testing.T) {
	t.Parallel()
	sentinel := redistest.StartSentinel(t)
	var n atomic.Int64
	conformance.RunConformance(t, func(t *testing.T) storage.Store {
		s, err := redisstore.Open(context.Background(), redisstore.Options{
			MasterName: sentinel.MasterName,
			Addrs:      []string{sentinel.Addr},
			Password:   sentinel.Master.Password,
			Prefix:     fmt.Sprintf("case%d", n.Add(1)),
		})
		if err != nil {
			t.Fatalf("open through sentinel: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestConformanceCluster3 runs the suite on a three-master Redis Cluster:
// workspaces, accounts and global keys are spread over nodes, so redirects
// and per-node pipeline splitting are exercised too.
func TestConformanceCluster3(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	// After all cases: every node must have held some of the keys, or the
	// test did not exercise a spread cluster.
	t.Cleanup(func() {
		for i, a := range cl.Addrs {
			c := redis.NewClient(cl.Node(i).Options())
			n, err := c.DBSize(context.Background()).Result()
			_ = c.Close()
			if err != nil || n == 0 {
				t.Errorf("cluster node %s holds %d keys (%v); the keys were not spread", a, n, err)
			}
		}
	})
	var n atomic.Int64
	conformance.RunConformance(t, func(t *testing.T) storage.Store {
		s, err := redisstore.Open(context.Background(), redisstore.Options{
			Addrs:    cl.Addrs,
			Password: cl.Password,
			Prefix:   fmt.Sprintf("case%d", n.Add(1)),
		})
		if err != nil {
			t.Fatalf("open cluster: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
