package saml

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// The responses below were captured from (or, for Entra ID, built in the
// wire format of) real IdPs and ship with crewjam/saml v0.6.3 (BSD-2,
// testdata/crewjam/LICENSE). They are fixed in time, so each is parsed
// with a fixed clock on the service provider (ServiceProvider.Clock; no
// package global is touched), then run through scimjit's attribute mapping.

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "crewjam", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtureSP(t testing.TB, metadata, base string, now time.Time) *crewjam.ServiceProvider {
	t.Helper()
	kb, _ := pem.Decode(fixture(t, "sp_key.pem"))
	key, err := x509.ParsePKCS1PrivateKey(kb.Bytes)
	if err != nil {
		k8, err8 := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err8 != nil {
			t.Fatalf("sp key: %v / %v", err, err8)
		}
		key = k8.(*rsa.PrivateKey)
	}
	cb, _ := pem.Decode(fixture(t, "sp_cert.pem"))
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := url.Parse(base + "/saml/metadata")
	acs, _ := url.Parse(base + "/saml/acs")
	sp := &crewjam.ServiceProvider{Key: key, Certificate: cert, MetadataURL: *md, AcsURL: *acs,
		IDPMetadata: &crewjam.EntityDescriptor{}, Clock: dsig.NewFakeClockAt(now)}
	if err := xml.Unmarshal(fixture(t, metadata), sp.IDPMetadata); err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestMapIdentityOnRealIdPResponses(t *testing.T) {
	entraNow := time.Date(2025, 6, 2, 15, 4, 6, 0, time.UTC)
	cases := []struct {
		name       string
		metadata   string
		response   string
		base64     bool // the fixture is already base64 (as posted)
		base       string
		now        time.Time
		requestID  string
		idpInit    bool
		wantEmail  string
		wantName   string
		wantGiven  string
		wantFamily string
	}{
		{name: "entra assertion signed", metadata: "TestSPCanHandleEntraIDResponse_IDPMetadata",
			response: "TestSPCanHandleEntraIDResponse_assertion_signed", base: "https://sp.example.com", now: entraNow,
			requestID: "id-4f6e2c9d8a7b1e3f5d0c2b4a6e8f1d3c5b7a9e0f",
			wantEmail: "alice@contoso.example", wantName: "Alice Example", wantGiven: "Alice", wantFamily: "Example"},
		{name: "entra response signed", metadata: "TestSPCanHandleEntraIDResponse_IDPMetadata",
			response: "TestSPCanHandleEntraIDResponse_response_signed", base: "https://sp.example.com", now: entraNow,
			requestID: "id-4f6e2c9d8a7b1e3f5d0c2b4a6e8f1d3c5b7a9e0f",
			wantEmail: "alice@contoso.example", wantName: "Alice Example", wantGiven: "Alice", wantFamily: "Example"},
		{name: "entra encrypted assertion", metadata: "TestSPCanHandleEntraIDResponse_IDPMetadata",
			response: "TestSPCanHandleEntraIDResponse_encrypted_assertion_signed", base: "https://sp.example.com", now: entraNow,
			requestID: "id-4f6e2c9d8a7b1e3f5d0c2b4a6e8f1d3c5b7a9e0f",
			wantEmail: "alice@contoso.example", wantName: "Alice Example", wantGiven: "Alice", wantFamily: "Example"},
		{name: "entra idp-initiated", metadata: "TestSPCanHandleEntraIDResponse_IDPMetadata",
			response: "TestSPCanHandleEntraIDResponse_idp_initiated", base: "https://sp.example.com", now: entraNow, idpInit: true,
			wantEmail: "alice@contoso.example", wantName: "Alice Example", wantGiven: "Alice", wantFamily: "Example"},
		{name: "onelogin", metadata: "TestSPCanHandleOneloginResponse_IDPMetadata",
			response: "TestSPCanHandleOneloginResponse_response", base64: true, base: "https://29ee6d2e.ngrok.io",
			now:       time.Date(2016, 1, 5, 17, 53, 12, 0, time.UTC),
			requestID: "id-d40c15c104b52691eccf0a2a5c8a15595be75423",
			// OneLogin spells its claims User.email / User.FirstName /
			// User.LastName (the "user." prefix of R5).
			wantEmail: "ross@kndr.org", wantName: "Ross Kinder", wantGiven: "Ross", wantFamily: "Kinder"},
		{name: "okta signed response, encrypted assertion", metadata: "TestSPCanHandleOktaSignedResponseEncryptedAssertion_IDPMetadata",
			response: "TestSPCanHandleOktaSignedResponseEncryptedAssertion_response", base64: true, base: "http://localhost:8000",
			now:       time.Date(2020, 3, 3, 19, 24, 28, 0, time.UTC),
			requestID: "id-a7364d1e4432aa9085a7a8bd824ea2fa8fa8f684",
			// Only a NameID in email format and a "Username" claim: the
			// email comes from the NameID (R2), the name from its local part (R3).
			wantEmail: "testuser@testrsc.com", wantName: "Testuser"},
		{name: "okta both signed, encrypted assertion", metadata: "TestSPCanHandleOktaResponseEncryptedAssertionBothSigned_IDPMetadata",
			response: "TestSPCanHandleOktaResponseEncryptedAssertionBothSigned_response", base64: true, base: "http://localhost:8000",
			now:       time.Date(2020, 3, 3, 19, 40, 54, 0, time.UTC),
			requestID: "id-953d4cab69ff475c5901d12e585b0bb15a7b85fe",
			wantEmail: "testuser@testrsc.com", wantName: "Testuser"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := fixtureSP(t, tc.metadata, tc.base, tc.now)
			sp.AllowIDPInitiated = tc.idpInit
			raw := fixture(t, tc.response)
			form := string(raw)
			if !tc.base64 {
				form = base64.StdEncoding.EncodeToString(raw)
			}
			req := &http.Request{PostForm: url.Values{"SAMLResponse": {form}}, URL: &sp.AcsURL}
			req.Form = req.PostForm
			var ids []string
			if tc.requestID != "" {
				ids = []string{tc.requestID}
			}
			a, err := sp.ParseResponse(req, ids)
			if err != nil {
				_, private := refusalReason(err)
				t.Fatalf("parse: %v", private)
			}
			id, err := mapIdentity(a)
			if err != nil {
				t.Fatalf("map: %v", err)
			}
			if id.Email != tc.wantEmail || id.FullName != tc.wantName || id.GivenName != tc.wantGiven || id.FamilyName != tc.wantFamily {
				t.Errorf("identity = %+v, want email %q name %q given %q family %q", id, tc.wantEmail, tc.wantName, tc.wantGiven, tc.wantFamily)
			}
			if id.Roles != [3]string{} {
				t.Errorf("roles = %v, want none sent", id.Roles)
			}
			// The same response a second time is a replay once a cache is set.
			sp.ReplayCache = memReplay{}
			if _, err := sp.ParseResponse(req, ids); err != nil {
				t.Fatalf("first parse with cache: %v", err)
			}
			if _, err := sp.ParseResponse(req, ids); err == nil {
				t.Fatal("replayed response accepted")
			} else if r, _ := refusalReason(err); r != "replayed" {
				t.Fatalf("replay reason = %q", r)
			}
		})
	}
}

type memReplay map[string]bool

func (m memReplay) Consume(id string, _ time.Time) error {
	if m[id] {
		return crewjam.ErrAssertionReplayed
	}
	m[id] = true
	return nil
}
