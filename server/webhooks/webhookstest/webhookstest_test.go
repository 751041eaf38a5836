package webhookstest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server/webhooks/webhookstest"
)

// TestVerifierVector: the verifier accepts the specification's published
// test vector and refuses it altered or stale; the signer reproduces the
// vector's signature.
func TestVerifierVector(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	at := time.Unix(1614265330, 0)
	if err := webhookstest.Verify(secret, h, body, at); err != nil {
		t.Fatalf("vector refused: %v", err)
	}
	if err := webhookstest.Verify(secret, h, []byte(`{"test": 2432232315}`), at); err == nil {
		t.Fatal("altered body accepted")
	}
	if err := webhookstest.Verify(secret, h, body, at.Add(6*time.Minute)); err == nil {
		t.Fatal("stale timestamp accepted")
	}
	signed, err := webhookstest.Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", at, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		if signed.Get(k) != h.Get(k) {
			t.Errorf("signed %s = %q, want the vector's %q", k, signed.Get(k), h.Get(k))
		}
	}
}
