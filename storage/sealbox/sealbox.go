// Package sealbox encrypts the secrets scimjit keeps in the store (SAML SP
// private keys, webhook signing secrets) with the deployment's secret key
// (--secret-key): AES-256-GCM under a key derived by HKDF-SHA256 (RFC 5869)
// from the secret key, a random salt kept with the record and a label per
// use. A sealed value is magic, 16-byte salt, 12-byte nonce, ciphertext;
// the magic (different per use) tells a sealed value from a plain one and
// is authenticated with it.
package sealbox

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

const saltLen = 16

var (
	// ErrWrongKey: the value was sealed with another secret key (or
	// altered).
	ErrWrongKey = errors.New("sealbox: wrong secret key")
	// ErrKeyRequired: the value is sealed and no secret key was given.
	ErrKeyRequired = errors.New("sealbox: sealed, secret key required")
	// ErrTruncated: the sealed value is too short.
	ErrTruncated = errors.New("sealbox: truncated")
)

// Box seals and opens the values of one use: Magic starts its sealed
// values, Label separates its derived keys from other uses'.
type Box struct {
	Magic []byte
	Label string
}

// Seal encrypts plain with secretKey.
func (b Box) Seal(plain []byte, secretKey string) ([]byte, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	aead, err := b.aead(secretKey, salt)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append(append(append([]byte{}, b.Magic...), salt...), nonce...)
	return aead.Seal(out, nonce, plain, b.Magic), nil
}

// IsSealed reports whether v is a sealed value of this box.
func (b Box) IsSealed(v []byte) bool { return bytes.HasPrefix(v, b.Magic) }

// Open decrypts a sealed value (IsSealed) with secretKey.
func (b Box) Open(v []byte, secretKey string) ([]byte, error) {
	rest, ok := bytes.CutPrefix(v, b.Magic)
	if !ok || len(rest) < saltLen+12 {
		return nil, ErrTruncated
	}
	if secretKey == "" {
		return nil, ErrKeyRequired
	}
	aead, err := b.aead(secretKey, rest[:saltLen])
	if err != nil {
		return nil, err
	}
	nonce := rest[saltLen : saltLen+aead.NonceSize()]
	plain, err := aead.Open(nil, nonce, rest[saltLen+aead.NonceSize():], b.Magic)
	if err != nil {
		return nil, ErrWrongKey
	}
	return plain, nil
}

func (b Box) aead(secretKey string, salt []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, []byte(secretKey), salt, b.Label, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
