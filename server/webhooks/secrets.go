package webhooks

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/sealbox"
)

// secretBox seals signing secrets with the deployment's secret key.
var secretBox = sealbox.Box{Magic: []byte("sjwh1\x00"), Label: "scimjit webhook secret v1"}

// NewSecret returns a new signing secret: "whsec_" and the standard
// base64 of 32 random bytes.
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand.Read does not fail on supported platforms
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}

// sealSecret is the stored form of secret: sealed with secretKey when
// there is one, else as it is.
func sealSecret(secret, secretKey string) ([]byte, error) {
	if secretKey == "" {
		return []byte(secret), nil
	}
	return secretBox.Seal([]byte(secret), secretKey)
}

// openSecret is the secret of a stored form.
func openSecret(stored []byte, secretKey string) (string, error) {
	if !secretBox.IsSealed(stored) {
		return string(stored), nil
	}
	b, err := secretBox.Open(stored, secretKey)
	if err != nil {
		return "", fmt.Errorf("webhook secret: %w (is --secret-key the one it was stored with?)", err)
	}
	return string(b), nil
}

// signingSecrets are the secrets of w that sign at time now: the current
// one and the rotated ones that have not expired.
func signingSecrets(w storage.Webhook, now time.Time, secretKey string) ([]string, error) {
	var out []string
	for _, s := range w.Secrets {
		if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
			continue
		}
		sec, err := openSecret(s.Sealed, secretKey)
		if err != nil {
			return nil, err
		}
		out = append(out, sec)
	}
	return out, nil
}

// sign returns the webhook-signature header of a message: one "v1,…"
// signature per secret, space-separated (Standard Webhooks).
func sign(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, sec := range secrets {
		wh, err := standardwebhooks.NewWebhook(sec)
		if err != nil {
			return "", fmt.Errorf("webhook secret: %w", err)
		}
		sig, err := wh.Sign(id, ts, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// timestampHeader is the webhook-timestamp of ts.
func timestampHeader(ts time.Time) string { return strconv.FormatInt(ts.Unix(), 10) }

// Verify checks a delivery to endpoint w as a receiver holding w's
// current secret does (Standard Webhooks): one of the signatures in
// webhook-signature matches, and webhook-timestamp is within five
// minutes of now. secretKey opens the stored secret.
func Verify(w storage.Webhook, secretKey string, h http.Header, body []byte) error {
	secret, err := CurrentSecret(w, secretKey)
	if err != nil {
		return err
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return fmt.Errorf("webhook secret: %w", err)
	}
	return wh.Verify(body, h)
}
