package server

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/xml"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

func TestNextMetadataDue(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		refreshBy time.Time
		interval  time.Duration
		want      time.Time
	}{
		"nothing asked: the interval":       {time.Time{}, 12 * time.Hour, now.Add(12 * time.Hour)},
		"sooner validUntil or cache wins":   {now.Add(time.Hour), 12 * time.Hour, now.Add(time.Hour)},
		"later validUntil: the interval":    {now.Add(48 * time.Hour), 12 * time.Hour, now.Add(12 * time.Hour)},
		"asks for at once: a minute":        {now.Add(time.Second), 12 * time.Hour, now.Add(time.Minute)},
		"short interval floors the minimum": {now.Add(time.Millisecond), 2 * time.Second, now.Add(2 * time.Second)},
		"past refreshBy: a minute from now": {now.Add(-time.Hour), 12 * time.Hour, now.Add(time.Minute)},
	} {
		if got := nextMetadataDue(tc.refreshBy, now, tc.interval); !got.Equal(tc.want) {
			t.Errorf("%s: nextMetadataDue = %s, want %s", name, got, tc.want)
		}
	}
}

// testIdPMetadata is an IdP's metadata with a fresh signing key.
func testIdPMetadata(t *testing.T) string {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	md, _ := url.Parse("https://idp.example.test/metadata")
	sso, _ := url.Parse("https://idp.example.test/sso")
	b, err := xml.Marshal((&crewsaml.IdentityProvider{Key: key, Certificate: cert, MetadataURL: *md, SSOURL: *sso}).Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOnlyOneProcessRefreshesADueWorkspace: two server processes on one
// store find the same workspace due at the same time; one downloads, the
// other sees its once-key taken, and neither downloads again before the
// next due time.
func TestOnlyOneProcessRefreshesADueWorkspace(t *testing.T) {
	md := testIdPMetadata(t)
	var hits atomic.Int64
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(md))
	}))
	t.Cleanup(idp.Close)
	store := redistest.NewRedisStore(t)
	base, _ := url.Parse("http://127.0.0.1:1")
	newServer := func() *Server {
		s, err := New(Config{Store: store, Logger: slog.New(slog.DiscardHandler), BaseURL: base,
			MetadataClient: idp.Client(), MetadataAllowPrivateHosts: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := newServer(), newServer()
	ws := storage.Workspace{ID: "acme", Name: "Acme", Settings: storage.DefaultSettings()}
	ws.Settings.IdP.MetadataURL = idp.URL + "/metadata"
	ws.Settings.IdP.MetadataRefresh.NextDue = time.Now().Add(-time.Minute)
	if _, err := store.CreateWorkspace(t.Context(), ws); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, s := range []*Server{a, b, a, b} {
		wg.Go(func() { s.refreshDueMetadata(t.Context()) })
	}
	wg.Wait()
	if n := hits.Load(); n != 1 {
		t.Fatalf("downloads for one due time: %d, want 1", n)
	}
	got, err := store.GetWorkspace(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	st := got.Settings.IdP.MetadataRefresh
	if got.Settings.IdP.MetadataXML != md || got.Settings.IdP.EntityID != "https://idp.example.test/metadata" ||
		st.LastError != "" || st.NextDue.Before(time.Now().Add(11*time.Hour)) {
		t.Fatalf("after the scheduled refresh: entity %q, state %+v", got.Settings.IdP.EntityID, st)
	}
	a.refreshDueMetadata(t.Context())
	b.refreshDueMetadata(t.Context())
	if n := hits.Load(); n != 1 {
		t.Fatalf("downloads before the next due time: %d, want still 1", n)
	}
}
