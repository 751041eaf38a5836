package redisstore_test

import (
	"context"
	"testing"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/conformance"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// TestConformanceRedis runs the suite against a real redis-server (one per
// case, spawned by redistest).
func TestConformanceRedis(t *testing.T) {
	conformance.RunConformance(t, func(t *testing.T) storage.Store { return redistest.NewStore(t) })
}

// TestConformanceEmbedded runs the suite against the embedded server that
// scimjit uses when no Redis URL is configured.
func TestConformanceEmbedded(t *testing.T) {
	conformance.RunConformance(t, func(t *testing.T) storage.Store {
		s, err := redisstore.OpenEmbedded(context.Background(), nil)
		if err != nil {
			t.Fatalf("open embedded: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
