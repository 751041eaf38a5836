package webhooks

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server/netguard"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/queue"
)

// TestSignVector: signing gives the Standard Webhooks specification's
// published test vector.
func TestSignVector(t *testing.T) {
	got, err := sign([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil || got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("sign = %q, %v; want the specification's vector", got, err)
	}
	two, err := sign([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", NewSecret()}, "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if f := strings.Fields(two); err != nil || len(f) != 2 || f[0] != got || !strings.HasPrefix(f[1], "v1,") {
		t.Fatalf("two secrets sign %q, %v; want two space-separated signatures", two, err)
	}
}

func TestSecretsSealedAndRotated(t *testing.T) {
	secret, stored, err := NewEndpointSecret("a deployment secret key of 32+ chars")
	if err != nil || !strings.HasPrefix(secret, "whsec_") || len(secret) != len("whsec_")+44 {
		t.Fatalf("secret %q, %v", secret, err)
	}
	if strings.Contains(string(stored.Sealed), secret) {
		t.Fatal("stored form carries the secret in clear")
	}
	now := time.Now()
	w := storage.Webhook{Secrets: []storage.WebhookSecret{stored}}
	if s, err := signingSecrets(w, now, "a deployment secret key of 32+ chars"); err != nil || len(s) != 1 || s[0] != secret {
		t.Fatalf("signing secrets %q, %v", s, err)
	}
	if _, err := signingSecrets(w, now, "another key"); err == nil {
		t.Fatal("opened with the wrong secret key")
	}
	next, stored2, _ := NewEndpointSecret("")
	Rotate(&w, stored2, now, time.Hour)
	s, err := signingSecrets(w, now, "a deployment secret key of 32+ chars")
	if err != nil || len(s) != 2 || s[0] != next || s[1] != secret {
		t.Fatalf("during the overlap: %q, %v; want the new and the old secret", s, err)
	}
	if s, _ := signingSecrets(w, now.Add(time.Hour), "a deployment secret key of 32+ chars"); len(s) != 1 || s[0] != next {
		t.Fatalf("after the overlap: %q, want the new secret only", s)
	}
	Rotate(&w, stored, now, 0)
	if len(w.Secrets) != 1 {
		t.Fatalf("rotation without overlap keeps %d secrets", len(w.Secrets))
	}
}

func TestFiltersAndTypes(t *testing.T) {
	for internal, public := range publicTypes {
		if !ValidFilter(public) {
			t.Errorf("%s maps to %s, which is not a documented type", internal, public)
		}
	}
	w := storage.Webhook{Enabled: true, Types: []string{"user.*", "signin.refused"}}
	for typ, want := range map[string]bool{"user.created": true, "user.deleted": true, "signin.refused": true,
		"signin.succeeded": false, "group.created": false} {
		if Wants(w, typ) != want {
			t.Errorf("Wants(%s) = %v", typ, !want)
		}
	}
	if Wants(storage.Webhook{Enabled: false}, "user.created") || !Wants(storage.Webhook{Enabled: true}, "join.pending") {
		t.Error("enabled flag or empty filter wrong")
	}
	for f, want := range map[string]bool{"user.*": true, "*": true, "user.created": true, "user": false, "use*": false,
		"nope.*": false, "user.created.x": false} {
		if ValidFilter(f) != want {
			t.Errorf("ValidFilter(%q) = %v", f, !want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for u, allowPrivate := range map[string]bool{"https://hooks.example.com/x": false, "http://127.0.0.1:8080/h": true} {
		if err := CheckURL(u, allowPrivate); err != nil {
			t.Errorf("CheckURL(%s, %v) = %v", u, allowPrivate, err)
		}
	}
	for _, u := range []string{"http://hooks.example.com/x", "ftp://x.example", "/relative", "https://user:pw@x.example/",
		"https://x.example/#frag", "https:///nohost"} {
		if err := CheckURL(u, false); err == nil {
			t.Errorf("CheckURL(%s) accepted", u)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{"120": 2 * time.Minute, "0": 0,
		"Thu, 01 Jan 2026 00:01:00 GMT": time.Minute, "Wed, 31 Dec 2025 00:00:00 GMT": 0} {
		if d, ok := retryAfter(v, now); !ok || d != want {
			t.Errorf("retryAfter(%q) = %v, %v; want %v", v, d, ok, want)
		}
	}
	for _, v := range []string{"", "soon", "-5"} {
		if _, ok := retryAfter(v, now); ok {
			t.Errorf("retryAfter(%q) accepted", v)
		}
	}
}

// post is one attempt of s to a receiver answering with h.
func postTo(t *testing.T, s *Service, url string) result {
	t.Helper()
	_, stored, _ := NewEndpointSecret("")
	w := storage.Webhook{ID: "ep", URL: url, Enabled: true, Secrets: []storage.WebhookSecret{stored}}
	return s.post(context.Background(), w, task{Workspace: "ws", Endpoint: "ep", EventID: "1-0", Type: "user.created",
		Body: []byte(`{}`)})
}

// TestDeliverySafety: loopback receivers are refused on the address
// dialled unless allowed; redirects are not followed; a huge answer is
// read only up to the cap; statuses map to outcomes.
func TestDeliverySafety(t *testing.T) {
	var hits int
	var status int
	var location string
	big := strings.Repeat("x", 10*MaxResponseBytes)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/elsewhere" {
			t.Error("redirect followed")
		}
		if location != "" {
			w.Header().Set("Location", location)
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(big))
	}))
	defer srv.Close()

	strict := &Service{cfg: Config{Observe: func(string) {}}, client: newClient(2*time.Second, false)}
	// An https URL to a loopback address: refused at the dial.
	tls := httptest.NewTLSServer(http.NotFoundHandler())
	defer tls.Close()
	r := postTo(t, strict, tls.URL)
	if _, ok := errors.AsType[*netguard.RefusedError](r.err); !ok || r.outcome != "refused" {
		t.Fatalf("loopback by default: %v (%s), want refused at the dial", r.err, r.outcome)
	}
	// http is refused before any connection without the flag.
	if r := postTo(t, strict, srv.URL); r.outcome != "refused" || !queue.IsPermanent(r.err) || hits != 0 {
		t.Fatalf("http without the flag: %v (%s), %d hits", r.err, r.outcome, hits)
	}

	open := &Service{cfg: Config{AllowPrivate: true, Observe: func(string) {}}, client: newClient(2*time.Second, true)}
	counted := &countingTransport{next: open.client.Transport}
	open.client.Transport = counted
	status = http.StatusNoContent
	if r := postTo(t, open, srv.URL); r.err != nil || r.outcome != "delivered" || r.attempt.Status != 204 {
		t.Fatalf("allowed: %+v", r)
	}
	status = http.StatusOK
	if r := postTo(t, open, srv.URL); r.err != nil || counted.read > MaxResponseBytes {
		t.Fatalf("a 640 KiB answer: %v, %d bytes read; want at most %d", r.err, counted.read, MaxResponseBytes)
	}
	status, location = http.StatusFound, srv.URL+"/elsewhere"
	if r := postTo(t, open, srv.URL); r.err == nil || r.attempt.Status != http.StatusFound || hits != 3 {
		t.Fatalf("redirect: %+v after %d hits; want the 302 as a failed attempt, not followed", r, hits)
	}
	location = ""
	status = http.StatusServiceUnavailable
	r = postTo(t, open, srv.URL)
	if ra, ok := errors.AsType[*queue.RetryAfterError](r.err); !ok || ra.Delay != 7*time.Second {
		t.Fatalf("503 with Retry-After: %v, want a 7s RetryAfter", r.err)
	}
	status = http.StatusGone
	if r := postTo(t, open, srv.URL); r.outcome != "gone" {
		t.Fatalf("410: %+v", r)
	}
	status = http.StatusInternalServerError
	if r := postTo(t, open, srv.URL); r.outcome != "failed" || r.err == nil || r.attempt.Error != "HTTP 500" {
		t.Fatalf("500: %+v", r)
	}
}

// countingTransport counts the answer bytes its caller reads.
type countingTransport struct {
	next http.RoundTripper
	read int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err == nil {
		c.read = 0
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.read}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *int
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	*b.n += n
	return n, err
}
