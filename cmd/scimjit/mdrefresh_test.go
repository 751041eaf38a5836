package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
)

// TestWorkspaceRefreshMetadataCommand: workspace refresh-metadata
// downloads the metadata URL now and prints the outcome (a failed
// download says so and that the last good copy stays); workspace get
// shows the URL and the refresh state; a workspace without a URL is an
// error.
func TestWorkspaceRefreshMetadataCommand(t *testing.T) {
	var md atomic.Pointer[[]byte]
	var failing atomic.Bool
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		_, _ = w.Write(*md.Load())
	}))
	t.Cleanup(idp.Close)
	e := cliEnv{servertest.New(t, func(c *server.Config) {
		c.Demo = true
		c.MetadataClient = idp.Client()
		c.MetadataAllowPrivateHosts = true // the test IdP is on loopback
	}), t}
	demo, err := e.Server.SAML().DemoIdPMetadata()
	if err != nil {
		t.Fatal(err)
	}
	md.Store(&demo)

	e.ok("workspace", "create", "--id", "hr", "--name", "HR", "--idp-metadata-url", idp.URL+"/metadata")
	out := e.ok("workspace", "get", "hr")
	for _, want := range []string{"Metadata URL:", idp.URL + "/metadata", "Metadata fetched:", "Next refresh:"} {
		if !strings.Contains(out, want) {
			t.Errorf("workspace get does not show %q:\n%s", want, out)
		}
	}

	out = e.ok("workspace", "refresh-metadata", "hr")
	for _, want := range []string{"Download:", "ok", "Metadata changed:", "no", "Certificates changed:"} {
		if !strings.Contains(out, want) {
			t.Errorf("refresh-metadata does not show %q:\n%s", want, out)
		}
	}
	failing.Store(true)
	var r server.MetadataRefreshReport
	out = e.ok("workspace", "refresh-metadata", "hr", "-o", "json")
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.OK || !strings.Contains(r.Error, "502") || len(r.SigningCertificates) != 1 {
		t.Fatalf("failed refresh -o json: %v %+v\n%s", err, r, out)
	}
	if out = e.ok("workspace", "refresh-metadata", "hr"); !strings.Contains(out, "the last good copy stays in use") {
		t.Errorf("failed refresh output:\n%s", out)
	}
	if out = e.ok("workspace", "get", "hr"); !strings.Contains(out, "Last attempt failed:") {
		t.Errorf("workspace get after a failed refresh:\n%s", out)
	}

	e.ok("workspace", "create", "--id", "legal", "--name", "Legal")
	if code, _, errOut := e.run(nil, "workspace", "refresh-metadata", "legal"); code == 0 || !strings.Contains(errOut, "metadataURL") {
		t.Errorf("refresh-metadata without a URL: exit %d %s", code, errOut)
	}
}
