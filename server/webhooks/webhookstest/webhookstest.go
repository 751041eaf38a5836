package webhookstest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/scimjit/scimjit/server"
)

// signature is the base64 HMAC-SHA256, keyed with the base64-decoded part
// of secret after "whsec_", of "<id>.<timestamp>.<body>".
func signature(secret, id, ts string, body []byte) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("bad secret: %v", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	return mac.Sum(nil), nil
}

// Verify checks a delivery as the Standard Webhooks specification says a
// receiver must: the signed content is "<webhook-id>.<webhook-timestamp>.<body>",
// HMAC-SHA256 keyed with the base64-decoded part of the secret after
// "whsec_", base64-encoded, and webhook-signature is a space-separated
// list of "v1,<signature>" of which one must match; the timestamp must be
// within 5 minutes of now.
func Verify(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s is %v away", ts, d)
	}
	want, err := signature(secret, id, ts, body)
	if err != nil {
		return err
	}
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// Sign returns the headers of a delivery of body signed with secret, as a
// Standard Webhooks sender sets them.
func Sign(secret, id string, at time.Time, body []byte) (http.Header, error) {
	ts := strconv.FormatInt(at.Unix(), 10)
	sig, err := signature(secret, id, ts, body)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(sig))
	return h, nil
}

// Delivery is one request a Receiver got and verified.
type Delivery struct {
	ID, Type string
	Body     []byte
	Env      map[string]any
}

// Receiver is a webhook receiver that verifies every request with Verify
// and records the verified ones; it answers a refused one 401. Server
// is its test server (closed when the test ends): endpoints point at
// Server.URL + "/hook".
type Receiver struct {
	Server *httptest.Server
	t      testing.TB
	mu     sync.Mutex
	secret string
	got    []Delivery
	bad    []string
	fail   func(w http.ResponseWriter) bool
}

// NewReceiver starts a receiver; it verifies with the secret SetSecret
// gives it.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{t: t}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail != nil && r.fail(w) {
			return
		}
		if err := Verify(r.secret, req.Header, body, time.Now()); err != nil ||
			req.Header.Get("Content-Type") != "application/json" || req.Header.Get("User-Agent") != "scimjit" {
			r.bad = append(r.bad, fmt.Sprintf("%v %v", err, req.Header))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var env map[string]any
		if err := json.Unmarshal(body, &env); err != nil {
			r.bad = append(r.bad, "body not JSON: "+string(body))
		}
		typ, _ := env["type"].(string)
		r.got = append(r.got, Delivery{ID: req.Header.Get("webhook-id"), Type: typ, Body: body, Env: env})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() { r.Server.Close() })
	return r
}

// SetSecret sets the secret the receiver verifies with (the endpoint's,
// shown when it was created or its secret rotated).
func (r *Receiver) SetSecret(secret string) {
	r.mu.Lock()
	r.secret = secret
	r.mu.Unlock()
}

// SetFail makes f answer each request first; when it returns true the
// request is answered (the receiver is down). nil: every request is
// verified.
func (r *Receiver) SetFail(f func(w http.ResponseWriter) bool) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

// Got returns the verified deliveries, in arrival order.
func (r *Receiver) Got() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// WaitTypes waits until the receiver has every type of want (as many
// times as listed), then returns the first delivery of each webhook-id.
// It fails the test at once when a request did not verify.
func (r *Receiver) WaitTypes(want []string, timeout time.Duration) map[string]Delivery {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		byID := map[string]Delivery{}
		var types []string
		for _, d := range r.got {
			if _, dup := byID[d.ID]; dup {
				continue
			}
			byID[d.ID] = d
			types = append(types, d.Type)
		}
		bad := slices.Clone(r.bad)
		r.mu.Unlock()
		if len(bad) > 0 {
			r.t.Fatalf("receiver refused deliveries: %q", bad)
		}
		slices.Sort(types)
		w := slices.Clone(want)
		slices.Sort(w)
		if slices.Equal(types, w) {
			return byID
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("received types %q, want %q", types, w)
		}
		time.Sleep(50 * time.Millisecond) // polling the receiver
	}
}

// Schemas validates payloads against the OpenAPI document's webhook
// schemas: the returned function checks body against the schema of event
// type typ.
func Schemas(t testing.TB) func(typ string, body []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(server.OpenAPIDocument))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("https://scimjit.test/openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	return func(typ string, body []byte) error {
		sch, err := c.Compile("https://scimjit.test/openapi.json#/components/schemas/Webhook_" + strings.ReplaceAll(typ, ".", "_"))
		if err != nil {
			return fmt.Errorf("no schema for %s: %w", typ, err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			return err
		}
		return sch.Validate(inst)
	}
}
