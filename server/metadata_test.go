package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage/redistest"
)

// withCertificate replaces the text of every X509Certificate element.
func withCertificate(md, data string) string {
	re := regexp.MustCompile(`(<(?:[A-Za-z0-9]+:)?X509Certificate[^>]*>)[^<]*(</)`)
	return re.ReplaceAllString(md, "${1}"+data+"${2}")
}

// brokenCertificates are IdP metadata documents whose certificate the
// SAML library could not read, and what the refusal must say. Every check
// of the metadata is tested in package saml (TestValidateIdPMetadata);
// these cases show that the admin API and the bootstrap file apply them.
func brokenCertificates(t *testing.T) map[string]struct{ md, want string } {
	md := idpMetadataXML(t, "https://idp.example.test/metadata")
	if !strings.Contains(md, "X509Certificate") {
		t.Fatal("test metadata has no certificate")
	}
	return map[string]struct{ md, want string }{
		"garbage base64":     {withCertificate(md, "!!not*base64!!"), "not valid base64"},
		"truncated cert DER": {withCertificate(md, "MIIC"), "not an X.509 certificate"},
	}
}

// TestIdPMetadataWithBrokenCertificateRefused: the admin API refuses IdP
// metadata whose certificate is not readable (400 naming the certificate
// and the problem) instead of storing it and failing every sign-in.
func TestIdPMetadataWithBrokenCertificateRefused(t *testing.T) {
	env := servertest.New(t, nil)
	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{"id": "acme", "name": "Acme"})
	wantStatus(t, resp, body, http.StatusCreated)
	for name, tc := range brokenCertificates(t) {
		t.Run(name, func(t *testing.T) {
			resp, body := env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/acme",
				map[string]any{"settings": map[string]any{"idp": map[string]any{"metadataXML": tc.md}}})
			wantStatus(t, resp, body, http.StatusBadRequest)
			msg := decode[apiErr](t, body).Message
			for _, want := range []string{"settings.idp.metadataXML", "certificate 1", tc.want} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not mention %q", msg, want)
				}
			}
			resp, body = env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{"id": "other", "name": "Other",
				"settings": map[string]any{"idp": map[string]any{"metadataXML": tc.md}}})
			wantStatus(t, resp, body, http.StatusBadRequest)
		})
	}
	// The workspace kept no IdP.
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if ws := decode[server.WorkspaceJSON](t, body); ws.Settings.IdP.MetadataXML != "" {
		t.Fatalf("broken metadata was stored")
	}
}

// TestBootstrapWithBrokenCertificateRefused: the bootstrap file is checked
// the same way; the error names the workspace, the certificate and the
// problem.
func TestBootstrapWithBrokenCertificateRefused(t *testing.T) {
	for name, tc := range brokenCertificates(t) {
		t.Run(name, func(t *testing.T) {
			file := fmt.Sprintf("workspaces:\n  - id: acme\n    name: Acme\n    settings:\n      idp:\n        metadataXML: %q\n", tc.md)
			_, err := server.ParseBootstrap([]byte(file))
			if err == nil {
				t.Fatal("bootstrap file with a broken certificate accepted")
			}
			for _, want := range []string{"workspaces[0]", "settings.idp.metadataXML", "certificate 1", tc.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// metadataServer is an https IdP metadata server on loopback that counts
// the requests it gets.
func metadataServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	md := idpMetadataXML(t, "https://idp.example.test/metadata")
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_, _ = w.Write([]byte(md))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestMetadataURLOnNonPublicHostRefused: by default the admin API does not
// download metadata from a loopback (or other non-public) address, named
// by IP or by a host name that resolves to one: no connection is made and
// the 400 says why. --idp-metadata-allow-private-hosts allows it.
func TestMetadataURLOnNonPublicHostRefused(t *testing.T) {
	idp, hits := metadataServer(t)
	_, p, _ := strings.Cut(idp.Listener.Addr().String(), ":")
	env := servertest.New(t, func(c *server.Config) { c.MetadataClient = idp.Client() })
	for _, u := range []string{idp.URL + "/metadata", "https://localhost:" + p + "/metadata"} {
		resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{"id": "acme", "name": "Acme",
			"settings": map[string]any{"idp": map[string]any{"metadataURL": u}}})
		wantStatus(t, resp, body, http.StatusBadRequest)
		msg := decode[apiErr](t, body).Message
		for _, want := range []string{"settings.idp.metadataURL", "loopback address", "--idp-metadata-allow-private-hosts"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: message %q does not mention %q", u, msg, want)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback metadata server got %d requests, want none", n)
	}

	allowed := servertest.New(t, func(c *server.Config) {
		c.MetadataClient = idp.Client()
		c.MetadataAllowPrivateHosts = true
	})
	resp, body := allowed.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{"id": "acme", "name": "Acme",
		"settings": map[string]any{"idp": map[string]any{"metadataURL": idp.URL + "/metadata"}}})
	wantStatus(t, resp, body, http.StatusCreated)
	if hits.Load() != 1 {
		t.Fatalf("allowed download: %d requests, want 1", hits.Load())
	}
}

// TestBootstrapMetadataURLOnNonPublicHostRefused: the bootstrap file's
// metadataURL follows the same rule and the same switch. A download that
// is refused does not stop the bootstrap (nor the other workspaces of the
// file): the workspace is created without metadata, the reason is
// recorded in its refresh state, and its sign-in page says it is not
// configured yet; once the download is allowed the metadata is stored.
func TestBootstrapMetadataURLOnNonPublicHostRefused(t *testing.T) {
	idp, hits := metadataServer(t)
	file := "workspaces:\n  - id: acme\n    name: Acme\n    settings:\n      idp:\n        metadataURL: " +
		idp.URL + "/metadata\n  - id: other\n    name: Other\n"
	b, err := server.ParseBootstrap([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	store := redistest.NewStore(t)
	log := slog.New(slog.DiscardHandler)
	src := secrets(nil, nil)
	src.HTTPClient = idp.Client()
	if err := server.ApplyBootstrap(t.Context(), store, log, b, src); err != nil {
		t.Fatalf("bootstrap with an unreachable metadata URL failed: %v", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the loopback metadata server got %d requests, want none", hits.Load())
	}
	ws, err := store.GetWorkspace(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	st := ws.Settings.IdP.MetadataRefresh
	if ws.Settings.IdP.MetadataXML != "" || ws.Settings.IdP.MetadataURL != idp.URL+"/metadata" ||
		!strings.Contains(st.LastError, "loopback address") || !st.FetchedAt.IsZero() || st.NextDue.IsZero() {
		t.Fatalf("workspace after a refused download: xml %d bytes, url %q, state %+v",
			len(ws.Settings.IdP.MetadataXML), ws.Settings.IdP.MetadataURL, st)
	}
	if _, err := store.GetWorkspace(t.Context(), "other"); err != nil {
		t.Fatalf("the other workspace of the file: %v", err)
	}

	env := servertest.New(t, func(c *server.Config) { c.Store = store })
	resp, err := http.Get(env.URL + "/saml/acme/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(page), "not configured yet") {
		t.Fatalf("sign-in before the metadata was downloaded: %d %s", resp.StatusCode, page)
	}

	b, _ = server.ParseBootstrap([]byte(file))
	src.MetadataAllowPrivateHosts = true
	if err := server.ApplyBootstrap(t.Context(), store, log, b, src); err != nil {
		t.Fatalf("bootstrap with private hosts allowed: %v", err)
	}
	ws, err = store.GetWorkspace(t.Context(), "acme")
	if err != nil || ws.Settings.IdP.MetadataXML == "" || ws.Settings.IdP.MetadataRefresh.LastError != "" ||
		ws.Settings.IdP.MetadataRefresh.FetchedAt.IsZero() {
		t.Fatalf("bootstrap stored no metadata: %v %+v", err, ws.Settings.IdP.MetadataRefresh)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get(env.URL + "/saml/acme/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-in after the download: %d, want a redirect to the IdP", resp.StatusCode)
	}
}
