package saml

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/sealbox"
)

// The SP key pairs live in the store (storage.SPKeys), so every process
// signs, decrypts and publishes metadata with the same keys. A private key
// is stored as PEM, or sealed with the deployment's secret key: AES-256-GCM
// under a key derived by HKDF-SHA256 (RFC 5869) from the secret and a
// random salt kept with the record.

// DefaultKeyRefresh is how often a process re-reads the shared key pairs
// (Config.KeyRefresh), so a rotation reaches every process without a
// restart.
const DefaultKeyRefresh = time.Minute

// sealedMagic starts a sealed private key: magic, 16-byte salt, 12-byte
// GCM nonce, ciphertext of the PKCS#8 DER.
var sealedMagic = []byte("sjsk1\x00")

// ErrWrongSecretKey: the stored SP key cannot be decrypted with the
// configured secret key.
var ErrWrongSecretKey = errors.New("the stored SAML SP key cannot be decrypted with this --secret-key (wrong secret key)")

// ErrSecretKeyRequired: the stored SP key is encrypted and no secret key is
// configured.
var ErrSecretKeyRequired = errors.New("the stored SAML SP key is encrypted: --secret-key is required")

// keyPair is one decoded SP key pair.
type keyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// keyring is the key material a process uses: current signs and decrypts,
// next and previous (when present) also decrypt (an IdP may encrypt to any
// certificate the metadata lists), and all are published in the SP
// metadata. csrfKeys are the CSRF MAC keys derived from them, current
// first: a token made with another process's current key still validates
// while the processes' views of a rotation differ.
type keyring struct {
	current  keyPair
	others   []keyPair // next, then previous
	csrfKeys [][]byte
	// version is storage.SPKeys.Version (0 for configured files); the
	// service-provider cache is keyed by it.
	version int64
	loaded  time.Time
	// currentPlain: the current private key is stored unencrypted.
	currentPlain bool
}

func newKeyring(version int64, current keyPair, others ...keyPair) *keyring {
	r := &keyring{current: current, others: others, version: version, loaded: time.Now()}
	for _, p := range append([]keyPair{current}, others...) {
		ck := sha256.Sum256(append([]byte("scimjit csrf key\x00"), x509.MarshalPKCS1PrivateKey(p.key)...))
		r.csrfKeys = append(r.csrfKeys, ck[:])
	}
	return r
}

// certificates are the published certificates, current first.
func (r *keyring) certificates() []*x509.Certificate {
	out := []*x509.Certificate{r.current.cert}
	for _, p := range r.others {
		out = append(out, p.cert)
	}
	return out
}

// newSPKey generates a key pair (selfSigned) sealed with secret ("" for
// plain PEM).
func newSPKey(cn, secret string) (storage.SPKey, error) {
	key, cert, err := selfSigned(cn)
	if err != nil {
		return storage.SPKey{}, fmt.Errorf("generate sp key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return storage.SPKey{}, err
	}
	sealed, err := sealKey(der, secret)
	if err != nil {
		return storage.SPKey{}, err
	}
	return storage.SPKey{Key: sealed, Certificate: cert.Raw, CreatedAt: time.Now().UTC()}, nil
}

// spKeyBox seals SP private keys.
var spKeyBox = sealbox.Box{Magic: sealedMagic, Label: "scimjit sp key v1"}

// sealKey returns the PEM of a PKCS#8 DER key without a secret, else the
// sealed form.
func sealKey(der []byte, secret string) ([]byte, error) {
	if secret == "" {
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}
	return spKeyBox.Seal(der, secret)
}

// openKey decodes a stored SP key pair with secret. A sealed key needs the
// secret that sealed it (ErrSecretKeyRequired, ErrWrongSecretKey).
func openKey(k storage.SPKey, secret string) (keyPair, error) {
	var der []byte
	if spKeyBox.IsSealed(k.Key) {
		var err error
		der, err = spKeyBox.Open(k.Key, secret)
		switch {
		case errors.Is(err, sealbox.ErrKeyRequired):
			return keyPair{}, ErrSecretKeyRequired
		case errors.Is(err, sealbox.ErrWrongKey):
			return keyPair{}, ErrWrongSecretKey
		case err != nil:
			return keyPair{}, errors.New("stored sp key: truncated")
		}
	} else {
		b, _ := pem.Decode(k.Key)
		if b == nil || b.Type != "PRIVATE KEY" {
			return keyPair{}, errors.New("stored sp key: neither PEM nor sealed")
		}
		der = b.Bytes
	}
	pk, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return keyPair{}, fmt.Errorf("stored sp key: %w", err)
	}
	key, ok := pk.(*rsa.PrivateKey)
	if !ok {
		return keyPair{}, errors.New("stored sp key: not RSA")
	}
	cert, err := x509.ParseCertificate(k.Certificate)
	if err != nil {
		return keyPair{}, fmt.Errorf("stored sp certificate: %w", err)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return keyPair{}, errors.New("stored sp certificate does not match its key")
	}
	return keyPair{key: key, cert: cert}, nil
}

// isSealed reports whether a stored key is encrypted.
func isSealed(k storage.SPKey) bool { return spKeyBox.IsSealed(k.Key) }

// openKeyring decodes every pair of k.
func openKeyring(k storage.SPKeys, secret string) (*keyring, error) {
	cur, err := openKey(k.Current, secret)
	if err != nil {
		return nil, err
	}
	var others []keyPair
	for _, o := range []*storage.SPKey{k.Next, k.Previous} {
		if o == nil {
			continue
		}
		p, err := openKey(*o, secret)
		if err != nil {
			return nil, err
		}
		others = append(others, p)
	}
	r := newKeyring(k.Version, cur, others...)
	r.currentPlain = !isSealed(k.Current)
	return r, nil
}

// loadKeys reads the shared key pairs, creating them on first use (of
// processes starting together exactly one creates; storage.CreateSPKeys).
func (s *Service) loadKeys(ctx context.Context) (*keyring, error) {
	k, err := s.cfg.Store.SPKeys(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		var cur storage.SPKey
		if cur, err = newSPKey(s.spKeyName(), s.cfg.SecretKey); err != nil {
			return nil, err
		}
		var created bool
		k, created, err = s.cfg.Store.CreateSPKeys(ctx, storage.SPKeys{Current: cur})
		if err == nil && created {
			s.logger.InfoContext(ctx, "saml: created the shared sp key pair", "sha256", fingerprint(k.Current.Certificate))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("saml: read sp keys: %w", err)
	}
	r, err := openKeyring(k, s.cfg.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("saml: %w", err)
	}
	return r, nil
}

func (s *Service) spKeyName() string { return "scimjit SP " + s.cfg.BaseURL.Host }

// LoadKeys reads (creating them when there are none) the SP key pairs the
// processes share, unless Config.Key is set. serve calls it at startup, so
// a wrong secret key stops the server with ErrWrongSecretKey; later the
// service re-reads them every Config.KeyRefresh.
func (s *Service) LoadKeys(ctx context.Context) error {
	if s.cfg.Key != nil {
		return nil
	}
	r, err := s.loadKeys(ctx)
	if err != nil {
		return err
	}
	s.keysMu.Lock()
	s.ring = r
	s.keysMu.Unlock()
	switch {
	case s.cfg.SecretKey == "" && !s.cfg.Demo:
		s.logger.WarnContext(ctx, "saml: the sp private key is stored in redis unencrypted; set --secret-key to encrypt it (then run scimjit sp-key rotate and promote)")
	case s.cfg.SecretKey != "" && r.currentPlain:
		s.logger.WarnContext(ctx, "saml: the current sp private key was stored unencrypted before --secret-key was set; run scimjit sp-key rotate and promote to replace it")
	}
	return nil
}

// keys returns the key material to use now: the configured pair, or the
// shared pairs, re-read when older than Config.KeyRefresh. When a re-read
// fails the last pairs stay in use (logged); the error is returned only
// when there are none.
func (s *Service) keys(ctx context.Context) (*keyring, error) {
	if s.static != nil {
		return s.static, nil
	}
	// One re-read at a time: requests arriving meanwhile wait for it rather
	// than each reading the store.
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if s.ring != nil && time.Since(s.ring.loaded) < s.cfg.KeyRefresh {
		return s.ring, nil
	}
	r, err := s.loadKeys(ctx)
	if err != nil {
		if s.ring == nil {
			return nil, err
		}
		s.logger.WarnContext(ctx, "saml: re-reading the sp keys failed; keeping the last ones", "err", err)
		s.ring.loaded = time.Now() // retry after another interval
		return s.ring, nil
	}
	s.ring = r
	return r, nil
}

// fingerprint is the hex SHA-256 of a DER certificate.
func fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// SPKeyInfo describes one stored SP key pair for `scimjit sp-key show`.
type SPKeyInfo struct {
	Role        string // "current", "next" or "previous"
	SHA256      string // hex SHA-256 of the DER certificate
	NotAfter    time.Time
	CreatedAt   time.Time
	Encrypted   bool
	Certificate []byte // DER
}

// DescribeSPKeys lists the stored key pairs, current first.
func DescribeSPKeys(k storage.SPKeys) ([]SPKeyInfo, error) {
	var out []SPKeyInfo
	for _, e := range []struct {
		role string
		key  *storage.SPKey
	}{{"current", &k.Current}, {"next", k.Next}, {"previous", k.Previous}} {
		if e.key == nil {
			continue
		}
		cert, err := x509.ParseCertificate(e.key.Certificate)
		if err != nil {
			return nil, fmt.Errorf("%s certificate: %w", e.role, err)
		}
		out = append(out, SPKeyInfo{Role: e.role, SHA256: fingerprint(e.key.Certificate), NotAfter: cert.NotAfter,
			CreatedAt: e.key.CreatedAt, Encrypted: isSealed(*e.key), Certificate: e.key.Certificate})
	}
	return out, nil
}

// ErrNoSPKeys: no process has created the shared key pairs yet.
var ErrNoSPKeys = errors.New("no SP key pair stored yet (start scimjit serve once)")

// RotateSPKey generates the next key pair (sealed with secret when not
// empty) and stores it as Next: from then on every process publishes its
// certificate in the SP metadata and can decrypt with it, but signs with
// the current one until PromoteSPKey. A next pair that already exists is
// replaced only with replace set.
func RotateSPKey(ctx context.Context, store storage.Store, secret, cn string, replace bool) (storage.SPKeys, error) {
	cur, err := store.SPKeys(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.SPKeys{}, ErrNoSPKeys
	}
	if err != nil {
		return storage.SPKeys{}, err
	}
	// The new key is sealed like the others: check the secret against the
	// current key first, so that a typo does not store an unreadable key.
	if _, err := openKey(cur.Current, secret); err != nil {
		return storage.SPKeys{}, err
	}
	next, err := newSPKey(cn, secret)
	if err != nil {
		return storage.SPKeys{}, err
	}
	k, err := store.UpdateSPKeys(ctx, func(k *storage.SPKeys) error {
		if k.Next != nil && !replace {
			return errors.New("a next SP key pair exists already: promote it (sp-key promote), or replace it with --replace")
		}
		k.Next = &next
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.SPKeys{}, ErrNoSPKeys
	}
	return k, err
}

// PromoteSPKey makes the next key pair current; the current one becomes
// previous (still published and decrypting, for IdPs that encrypt to the
// certificate they read before) and the one previous before is dropped.
func PromoteSPKey(ctx context.Context, store storage.Store) (storage.SPKeys, error) {
	k, err := store.UpdateSPKeys(ctx, func(k *storage.SPKeys) error {
		if k.Next == nil {
			return errors.New("there is no next SP key pair: run sp-key rotate first")
		}
		old := k.Current
		k.Current, k.Next, k.Previous = *k.Next, nil, &old
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.SPKeys{}, ErrNoSPKeys
	}
	return k, err
}
