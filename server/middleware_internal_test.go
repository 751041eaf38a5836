package server

import (
	"maps"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gather returns the samples of reg: counter values and histogram sample
// counts by metric name and label values.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := []string{mf.GetName()}
			for _, l := range m.GetLabel() {
				key = append(key, l.GetValue())
			}
			if h := m.GetHistogram(); h != nil {
				got[strings.Join(key, " ")] = float64(h.GetSampleCount())
			} else {
				got[strings.Join(key, " ")] = m.GetCounter().GetValue()
			}
		}
	}
	return got
}

// The regular expressions ValidRequestID and ValidWorkspaceID used to be;
// the byte loops must accept exactly the same strings.
var (
	requestIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	slugRe      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

func TestValidatorsAcceptWhatTheRegexpsAccept(t *testing.T) {
	edge := []string{
		"", "a", "A", "0", "-", ".", "_", "a-", "-a", "a.b", "A_B",
		strings.Repeat("a", 62), strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65),
		strings.Repeat("-", 64), "a" + strings.Repeat("-", 62), "a" + strings.Repeat("-", 63),
		"abc\n", "\nabc", "abc\r\n", "ab c", "abc\x00", "\x00", "ab/c", "ab:c", "ab$", "^ab",
		"ünïcode", "aé", "é", "\xff", "a\xffb", "ａｂｃ", "Acme", "acme", "ACME", "acme-1", "1acme",
		strings.Repeat("é", 32), strings.Repeat("a", 63) + "\n", strings.Repeat("a", 64) + "\n",
	}
	// Random strings over an alphabet around the accepted bytes, with
	// lengths around the limits.
	const alphabet = "az09AZ.-_ \n\t/:@`[{\x00\x7f\xc3\xa9\xff"
	rng := rand.New(rand.NewPCG(1, 2))
	var random []string
	for range 20000 {
		n := rng.IntN(70)
		var b strings.Builder
		for range n {
			if rng.IntN(10) == 0 {
				b.WriteByte(alphabet[rng.IntN(len(alphabet))])
			} else {
				b.WriteByte("abcxyz0189-"[rng.IntN(11)])
			}
		}
		random = append(random, b.String())
	}
	for _, s := range append(edge, random...) {
		if got, want := ValidRequestID(s), requestIDRe.MatchString(s); got != want {
			t.Errorf("ValidRequestID(%q) = %v, regexp says %v", s, got, want)
		}
		if got, want := ValidWorkspaceID(s), slugRe.MatchString(s); got != want {
			t.Errorf("ValidWorkspaceID(%q) = %v, regexp says %v", s, got, want)
		}
	}
	// RE2's $ without (?m) matches only at the very end, not before a
	// trailing newline (unlike Perl's): such ids are rejected.
	if requestIDRe.MatchString("abc\n") || ValidRequestID("abc\n") || ValidWorkspaceID("abc\n") {
		t.Error("a trailing newline is accepted")
	}
}

func TestMetricsCacheCountsLikeWithLabelValues(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		m.observe(http.MethodGet, "/scim/v2/:ws/*", 200, time.Millisecond)
	}
	m.observe(http.MethodGet, "/scim/v2/:ws/*", 404, time.Millisecond)
	m.observe("BREW", "/scim/v2/:ws/*", 200, time.Millisecond)
	got := gather(t, reg)
	maps.DeleteFunc(got, func(k string, _ float64) bool { // no queue and no webhooks here
		return strings.HasPrefix(k, "scimjit_queue_") || strings.HasPrefix(k, "scimjit_webhook_")
	})
	want := map[string]float64{
		"scimjit_http_requests_total GET /scim/v2/:ws/* 200":         3,
		"scimjit_http_requests_total GET /scim/v2/:ws/* 404":         1,
		"scimjit_http_requests_total OTHER /scim/v2/:ws/* 200":       1,
		"scimjit_http_request_duration_seconds GET /scim/v2/:ws/*":   4,
		"scimjit_http_request_duration_seconds OTHER /scim/v2/:ws/*": 1,
	}
	if !maps.Equal(got, want) {
		t.Errorf("samples %v, want %v", got, want)
	}
	if n := len(*m.series.Load()); n != 3 {
		t.Errorf("%d cached series, want 3", n)
	}
}

func TestMetricsCacheIsBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxSeries + 10 {
		m.observe(http.MethodGet, "/r", 100+i, time.Millisecond)
	}
	if n := len(*m.series.Load()); n != maxSeries {
		t.Errorf("%d cached series, want the cap %d", n, maxSeries)
	}
	// Past the cap, requests are still counted.
	m.observe(http.MethodGet, "/r", 100+maxSeries+5, time.Millisecond)
	if got := gather(t, reg)["scimjit_http_requests_total GET /r 1129"]; got != 2 {
		t.Errorf("uncached series: %v requests, want 2", got)
	}
}
