package sealbox_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/scimjit/scimjit/storage/sealbox"
)

func TestSealOpen(t *testing.T) {
	a := sealbox.Box{Magic: []byte("tst1\x00"), Label: "test a"}
	b := sealbox.Box{Magic: []byte("tst1\x00"), Label: "test b"}
	sealed, err := a.Seal([]byte("whsec_secret"), "deployment key")
	if err != nil {
		t.Fatal(err)
	}
	if !a.IsSealed(sealed) || bytes.Contains(sealed, []byte("whsec_secret")) {
		t.Fatalf("sealed = %q: want the magic and no plaintext", sealed)
	}
	again, _ := a.Seal([]byte("whsec_secret"), "deployment key")
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one value are equal: want a fresh salt and nonce each time")
	}
	if got, err := a.Open(sealed, "deployment key"); err != nil || string(got) != "whsec_secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := a.Open(sealed, "other key"); !errors.Is(err, sealbox.ErrWrongKey) {
		t.Fatalf("Open with another key: %v, want ErrWrongKey", err)
	}
	if _, err := b.Open(sealed, "deployment key"); !errors.Is(err, sealbox.ErrWrongKey) {
		t.Fatalf("Open with another label: %v, want ErrWrongKey", err)
	}
	if _, err := a.Open(sealed, ""); !errors.Is(err, sealbox.ErrKeyRequired) {
		t.Fatalf("Open without a key: %v, want ErrKeyRequired", err)
	}
	if _, err := a.Open(sealed[:10], "deployment key"); !errors.Is(err, sealbox.ErrTruncated) {
		t.Fatalf("Open of a truncated value: %v, want ErrTruncated", err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := a.Open(tampered, "deployment key"); !errors.Is(err, sealbox.ErrWrongKey) {
		t.Fatalf("Open of an altered value: %v, want ErrWrongKey", err)
	}
}
