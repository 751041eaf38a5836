package saml_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
)

// rolloverMetadataXML is p's metadata listing the signing certificates of
// p and of next: what an IdP publishes while it rolls its key over.
func rolloverMetadataXML(t *testing.T, p, next *ssoIdP) string {
	t.Helper()
	ed := p.idp.Metadata()
	for _, kd := range next.idp.Metadata().IDPSSODescriptors[0].KeyDescriptors {
		if kd.Use == "signing" {
			ed.IDPSSODescriptors[0].KeyDescriptors = append(ed.IDPSSODescriptors[0].KeyDescriptors, kd)
		}
	}
	b, err := xml.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMetadataURLKeyRolloverWithoutRestart: the IdP behind a workspace's
// idp.metadataURL rolls its signing key over. An on-demand refresh (admin
// API) picks up metadata with both certificates, and sign-ins signed with
// either key work; a failed download keeps that copy; then the scheduled
// refresh of a second server process on the same Redis picks up the
// metadata with only the new key, and the first process, never restarted,
// accepts the new key and refuses the old one. Each change of the
// certificate set is an idp.certificates_changed event.
func TestMetadataURLKeyRolloverWithoutRestart(t *testing.T) {
	oldIdP := newSSOIdP(t, "https://idp.rollover.test")
	newIdP := oldIdP.impostor(t) // same entity ID and URLs, the next key
	var served atomic.Pointer[string]
	var failing atomic.Bool
	var hits atomic.Int64
	mdsrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if failing.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_, _ = w.Write([]byte(*served.Load()))
	}))
	t.Cleanup(mdsrv.Close)
	oldMD := oldIdP.metadataXML(t)
	served.Store(&oldMD)

	const interval = 2 * time.Second // so that a failed download is retried soon
	mutate := func(c *server.Config) {
		c.MetadataClient = mdsrv.Client()
		c.MetadataAllowPrivateHosts = true // the test IdP is on loopback
		c.MetadataRefreshInterval = interval
		c.MetadataCheckInterval = 100 * time.Millisecond
	}
	env := servertest.New(t, mutate)
	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{"id": "acme", "name": "Acme",
		"settings": map[string]any{"jit": map[string]any{"enabled": true},
			"idp": map[string]any{"metadataURL": mdsrv.URL + "/metadata"}}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create workspace: %d %s", resp.StatusCode, body)
	}
	var created server.WorkspaceJSON
	_ = json.Unmarshal(body, &created)
	if r := created.Settings.IdP.MetadataRefresh; created.Settings.IdP.MetadataURL == "" || r == nil || r.FetchedAt.IsZero() ||
		r.LastError != "" || !r.NextDue.After(r.FetchedAt) {
		t.Fatalf("created workspace idp settings: %+v %+v", created.Settings.IdP, r)
	}

	n := 0
	signIn := func(p *ssoIdP) int {
		t.Helper()
		n++
		return newSSOBrowser(env).signIn(t, p, "acme", assertionOpts{NameID: fmt.Sprintf("person%d@acme.example", n)}).Status
	}
	if st := signIn(oldIdP); st != http.StatusSeeOther {
		t.Fatalf("sign-in with the first key: %d", st)
	}
	if st := signIn(newIdP); st == http.StatusSeeOther {
		t.Fatal("sign-in with a key the metadata does not list was accepted")
	}

	refresh := func() server.MetadataRefreshReport {
		t.Helper()
		resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces/acme/refresh-metadata", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh-metadata: %d %s", resp.StatusCode, body)
		}
		var r server.MetadataRefreshReport
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}

	// Rollover: both certificates published; both keys verify.
	both := rolloverMetadataXML(t, oldIdP, newIdP)
	served.Store(&both)
	r := refresh()
	if !r.OK || !r.MetadataChanged || !r.CertificatesChanged || len(r.SigningCertificates) != 2 ||
		len(r.PreviousSigningCertificates) != 1 {
		t.Fatalf("rollover refresh report: %+v", r)
	}
	for name, p := range map[string]*ssoIdP{"old": oldIdP, "new": newIdP} {
		if st := signIn(p); st != http.StatusSeeOther {
			t.Fatalf("sign-in with the %s key during the rollover: %d", name, st)
		}
	}

	// A failed download keeps the last good copy.
	failing.Store(true)
	r = refresh()
	if r.OK || !strings.Contains(r.Error, "503") || r.MetadataChanged || r.CertificatesChanged || len(r.SigningCertificates) != 2 {
		t.Fatalf("failed refresh report: %+v", r)
	}
	if st := signIn(oldIdP); st != http.StatusSeeOther {
		t.Fatalf("sign-in after a failed refresh: %d", st)
	}

	// The IdP drops the old key; a second process refreshes on its
	// schedule (its loop runs in Serve); this one sees it with no restart.
	newMD := newIdP.metadataXML(t)
	served.Store(&newMD)
	failing.Store(false)
	other, err := server.New(func() server.Config { c := env.Config; c.AdminToken = ""; return c }())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- other.Serve(ctx, ln) }()
	t.Cleanup(func() { stop(); <-done })
	deadline := time.Now().Add(15 * time.Second)
	for {
		ws, err := env.Store.GetWorkspace(t.Context(), "acme")
		if err != nil {
			t.Fatal(err)
		}
		if ws.Settings.IdP.MetadataXML == newMD {
			if ws.Settings.IdP.MetadataRefresh.LastError != "" {
				t.Fatalf("refresh state after a successful scheduled refresh: %+v", ws.Settings.IdP.MetadataRefresh)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scheduled refresh did not pick up the new metadata: %+v", ws.Settings.IdP.MetadataRefresh)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := signIn(newIdP); st != http.StatusSeeOther {
		t.Fatalf("sign-in with the new key after the scheduled refresh: %d", st)
	}
	if st := signIn(oldIdP); st == http.StatusSeeOther {
		t.Fatal("sign-in with the dropped key was accepted after the refresh")
	}

	changes := events(t, env, "acme", "idp.certificates_changed")
	if len(changes) != 2 {
		t.Fatalf("idp.certificates_changed events: %+v, want 2 (rollover, old key dropped)", changes)
	}
	last := changes[1].Detail
	if strings.Count(last["before"], ",") != 1 || last["after"] == "" || strings.Contains(last["after"], ",") ||
		!strings.Contains(last["before"], last["after"]) {
		t.Fatalf("last certificate change detail: %+v", last)
	}
}

// TestInspectIdPMetadata: the refresh time is the sooner of validUntil and
// cacheDuration (entity or IDPSSODescriptor), and the signing certificates
// are all those listed, as distinct fingerprints.
func TestInspectIdPMetadata(t *testing.T) {
	p := newSSOIdP(t, "https://idp.inspect.test")
	next := p.impostor(t)
	now := time.Now().UTC().Truncate(time.Second)
	both := rolloverMetadataXML(t, p, next)
	f, err := saml.InspectIdPMetadata(both, "", now)
	if err != nil || len(f.SigningCertificates) != 2 || f.SigningCertificates[0] == f.SigningCertificates[1] {
		t.Fatalf("rollover metadata: %+v, %v; want two certificates", f, err)
	}
	if len(f.SigningCertificates[0]) != 64 {
		t.Fatalf("fingerprint %q is not hex SHA-256", f.SigningCertificates[0])
	}
	for name, tc := range map[string]struct {
		edit func(ed *crewjam.EntityDescriptor)
		want time.Time
	}{
		"entity cacheDuration": {func(ed *crewjam.EntityDescriptor) { ed.CacheDuration = time.Hour }, now.Add(time.Hour)},
		"sooner validUntil": {func(ed *crewjam.EntityDescriptor) {
			ed.CacheDuration = 6 * time.Hour
			ed.ValidUntil = now.Add(2 * time.Hour)
		}, now.Add(2 * time.Hour)},
		"descriptor cacheDuration": {func(ed *crewjam.EntityDescriptor) {
			ed.ValidUntil = now.Add(48 * time.Hour)
			ed.IDPSSODescriptors[0].CacheDuration = 30 * time.Minute
		}, now.Add(30 * time.Minute)},
	} {
		ed := p.idp.Metadata()
		ed.ValidUntil = time.Time{}
		tc.edit(ed)
		b, err := xml.Marshal(ed)
		if err != nil {
			t.Fatal(err)
		}
		f, err := saml.InspectIdPMetadata(string(b), "", now)
		if err != nil || !f.RefreshBy.Equal(tc.want) || len(f.SigningCertificates) != 1 {
			t.Errorf("%s: %+v, %v; want refresh by %s and one certificate", name, f, err, tc.want)
		}
	}
}
