package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

// noStore satisfies storage.Store for servers whose benchmarked routes never
// touch storage; any call panics.
type noStore struct{ storage.Store }

// discardWriter is a ResponseWriter that keeps nothing but the header map,
// so that the benchmark measures the server and not a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

func benchServer(b *testing.B) *Server {
	b.Helper()
	base, _ := url.Parse("http://127.0.0.1:1")
	s, err := New(Config{
		Store: noStore{},
		// The task queue is never started here: nothing dials this.
		Redis:   redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}),
		Logger:  slog.New(slog.NewJSONHandler(io.Discard, nil)),
		BaseURL: base,
		Metrics: prometheus.NewRegistry(),
		Demo:    true, // no warning about the generated SP key
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchHandler(c echo.Context) error { return c.NoContent(http.StatusNoContent) }

// BenchmarkMiddlewareChain sends a request through the real server's Echo
// instance (every middleware, logging to io.Discard, metrics on) to a route
// with a :ws parameter and no storage; "bare" is the same route on an Echo
// instance without middleware, the baseline the chain's cost is measured
// against.
func BenchmarkMiddlewareChain(b *testing.B) {
	run := func(b *testing.B, h http.Handler, reqID string) {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/bench/acme/Users/x", nil)
		req.RemoteAddr = "192.0.2.1:4711"
		if reqID != "" {
			req.Header.Set(HeaderRequestID, reqID)
		}
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	}
	b.Run("bare", func(b *testing.B) {
		e := echo.New()
		e.GET("/bench/:ws/Users/:id", benchHandler)
		run(b, e, "abc-123.DEF_4")
	})
	b.Run("chain", func(b *testing.B) {
		s := benchServer(b)
		s.echo.GET("/bench/:ws/Users/:id", benchHandler)
		run(b, s.echo, "abc-123.DEF_4")
	})
	b.Run("chain-new-id", func(b *testing.B) {
		s := benchServer(b)
		s.echo.GET("/bench/:ws/Users/:id", benchHandler)
		run(b, s.echo, "")
	})
}
