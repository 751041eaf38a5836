package redisstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/scimjit/scimjit/storage"
)

// spKeysWire is the stored form of the service provider's key pairs (one
// global key, {spkeys}:keys). The private keys are stored as the caller
// sealed them.
type spKeysWire struct {
	V        int        `json:"v"`
	Current  spKeyWire  `json:"cur"`
	Next     *spKeyWire `json:"next,omitempty"`
	Previous *spKeyWire `json:"prev,omitempty"`
	Version  int64      `json:"ver"`
}

type spKeyWire struct {
	Key     []byte `json:"key"`
	Cert    []byte `json:"cert"`
	Created int64  `json:"c"`
}

func (s *Store) spKeysKey() string { return s.prefix + ":{spkeys}:keys" }

func toSPKeyWire(k *storage.SPKey) *spKeyWire {
	if k == nil {
		return nil
	}
	return &spKeyWire{Key: k.Key, Cert: k.Certificate, Created: toMicro(k.CreatedAt)}
}

func fromSPKeyWire(w *spKeyWire) *storage.SPKey {
	if w == nil {
		return nil
	}
	return &storage.SPKey{Key: w.Key, Certificate: w.Cert, CreatedAt: fromMicro(w.Created)}
}

func encodeSPKeys(k storage.SPKeys) ([]byte, error) {
	return json.Marshal(spKeysWire{V: 1, Current: *toSPKeyWire(&k.Current), Next: toSPKeyWire(k.Next),
		Previous: toSPKeyWire(k.Previous), Version: k.Version})
}

func decodeSPKeys(b []byte) (storage.SPKeys, error) {
	var w spKeysWire
	if err := json.Unmarshal(b, &w); err != nil {
		return storage.SPKeys{}, fmt.Errorf("redisstore: decode sp keys: %w", err)
	}
	if w.V != 1 {
		return storage.SPKeys{}, fmt.Errorf("redisstore: sp keys record version %d unknown", w.V)
	}
	return storage.SPKeys{Current: *fromSPKeyWire(&w.Current), Next: fromSPKeyWire(w.Next),
		Previous: fromSPKeyWire(w.Previous), Version: w.Version}, nil
}

// SPKeys reads the key pairs.
func (s *Store) SPKeys(ctx context.Context) (storage.SPKeys, error) {
	b, err := s.rdb.Get(ctx, s.spKeysKey()).Bytes()
	if err != nil {
		return storage.SPKeys{}, s.wrap(err)
	}
	return decodeSPKeys(b)
}

// CreateSPKeys writes k with SET NX, so the first of several starting
// processes wins, then reads what is stored when it lost.
func (s *Store) CreateSPKeys(ctx context.Context, k storage.SPKeys) (storage.SPKeys, bool, error) {
	k.Version = 1
	b, err := encodeSPKeys(k)
	if err != nil {
		return storage.SPKeys{}, false, err
	}
	ok, err := s.rdb.SetNX(ctx, s.spKeysKey(), b, 0).Result()
	if err != nil {
		return storage.SPKeys{}, false, s.wrap(err)
	}
	if ok {
		got, err := decodeSPKeys(b) // the stored form (times truncated)
		return got, true, err
	}
	got, err := s.SPKeys(ctx)
	return got, false, err
}

// UpdateSPKeys is an optimistic WATCH/MULTI read-modify-write of the one
// record key; fn may run more than once.
func (s *Store) UpdateSPKeys(ctx context.Context, fn func(*storage.SPKeys) error) (storage.SPKeys, error) {
	var result storage.SPKeys
	err := s.watchUpdate(ctx, s.spKeysKey(), func(b []byte) ([]byte, error) {
		k, err := decodeSPKeys(b)
		if err != nil {
			return nil, err
		}
		old := k.Version
		if err := fn(&k); err != nil {
			return nil, callbackError{err}
		}
		k.Version = old + 1
		nb, err := encodeSPKeys(k)
		if err != nil {
			return nil, err
		}
		result, err = decodeSPKeys(nb)
		return nb, err
	}, setKeep(false))
	if err != nil {
		return storage.SPKeys{}, err
	}
	return result, nil
}
