package server

import (
	"context"
	"maps"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimjit/scimjit/storage/queue"
)

// metrics are the server's Prometheus collectors, labelled by route
// template (never the raw path, which would carry ids).
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// series caches the children of requests and duration by label values,
	// so that a request costs a map lookup instead of two WithLabelValues
	// (which hash the label values and take the vectors' locks). The map is
	// copy-on-write: readers load it without locking; mu serialises writers.
	// The cached children stay valid because nothing deletes or resets the
	// vectors' children.
	//
	// The key space is small: methods are collapsed to eight values, routes
	// are the route templates Echo matched (or "unmatched"), never raw
	// paths, and statuses are the few codes the handlers answer with.
	// maxSeries bounds the map all the same; past it, requests fall back
	// to WithLabelValues.
	series atomic.Pointer[map[seriesKey]series]
	mu     sync.Mutex

	// webhooks counts delivery attempts by outcome; queue is the durable
	// queue the queue gauges read (nil until StartWork).
	webhooks *prometheus.CounterVec
	// outboxDropped counts events that found a webhook outbox full.
	outboxDropped prometheus.Counter
	queue         atomic.Pointer[queue.Queue]
}

// maxSeries caps the number of cached label combinations.
const maxSeries = 1024

// seriesKey are the label values of one request.
type seriesKey struct {
	method, route string
	status        int
}

// series are the children of the vectors for one seriesKey.
type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimjit_http_requests_total",
			Help: "HTTP requests by method, route template and status code.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "scimjit_http_request_duration_seconds",
			Help:    "HTTP request duration by method and route template.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
	}
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scimjit_webhook_deliveries_total",
		Help: "Webhook delivery attempts by outcome: delivered, failed (retried), gone (410), refused (unsafe address), error.",
	}, []string{"outcome"})
	m.outboxDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "scimjit_webhook_outbox_dropped_total",
		Help: "Events that found their workspace's webhook outbox full and reach no endpoint (counted when a dispatcher finds out).",
	})
	stat := func(f func(queue.Stats) float64) func() float64 {
		return func() float64 {
			q := m.queue.Load()
			if q == nil {
				return 0
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := q.Stats(ctx)
			if err != nil {
				return math.NaN()
			}
			return f(st)
		}
	}
	depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "scimjit_queue_depth",
		Help: "Tasks of the durable queue not done yet (pending, scheduled, waiting for a retry, running), all processes.",
	}, stat(func(st queue.Stats) float64 { return float64(st.Pending + st.Scheduled + st.Retry + st.Active) }))
	archived := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "scimjit_queue_archived",
		Help: "Tasks of the durable queue that failed for good (archived), all processes.",
	}, stat(func(st queue.Stats) float64 { return float64(st.Archived) }))
	oldest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "scimjit_queue_oldest_pending_seconds",
		Help: "How long the oldest task ready to run has waited for a worker.",
	}, stat(func(st queue.Stats) float64 { return st.OldestPending.Seconds() }))
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.webhooks, m.outboxDropped, depth, archived, oldest} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.series.Store(&map[seriesKey]series{})
	return m, nil
}

// webhookAttempt counts one webhook delivery attempt (webhooks.Config.Observe).
func (m *metrics) webhookAttempt(outcome string) {
	if m != nil {
		m.webhooks.WithLabelValues(outcome).Inc()
	}
}

// webhookOutboxDropped counts events that found a webhook outbox full
// (webhooks.Config.ObserveDropped).
func (m *metrics) webhookOutboxDropped(n int64) {
	if m != nil {
		m.outboxDropped.Add(float64(n))
	}
}

// watchQueue makes the queue gauges read q.
func (m *metrics) watchQueue(q *queue.Queue) {
	if m != nil {
		m.queue.Store(q)
	}
}

// observe records one request. Unknown methods collapse into "OTHER" so
// that clients cannot create label values at will.
func (m *metrics) observe(method, route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
	default:
		method = "OTHER"
	}
	ser := m.lookup(seriesKey{method: method, route: route, status: status})
	ser.requests.Inc()
	ser.duration.Observe(d.Seconds())
}

// lookup returns the cached children for k, resolving and caching them on
// the first request with these label values.
func (m *metrics) lookup(k seriesKey) series {
	cur := m.series.Load()
	if ser, ok := (*cur)[k]; ok {
		return ser
	}
	ser := series{
		requests: m.requests.WithLabelValues(k.method, k.route, strconv.Itoa(k.status)),
		duration: m.duration.WithLabelValues(k.method, k.route),
	}
	if len(*cur) >= maxSeries {
		return ser
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur = m.series.Load()
	if len(*cur) >= maxSeries {
		return ser
	}
	next := make(map[seriesKey]series, len(*cur)+1)
	maps.Copy(next, *cur)
	next[k] = ser
	m.series.Store(&next)
	return ser
}
