package saml

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/scimjit/scimjit/storage"
)

// fuzzTarget is a service provider the fuzzed response is posted to, with
// the request ids the ACS would pass for it.
type fuzzTarget struct {
	sp  *crewjam.ServiceProvider
	ids []string
}

// spRegistry serves one SP's metadata to the test IdP.
type spRegistry struct{ md *crewjam.EntityDescriptor }

func (r spRegistry) GetServiceProvider(*http.Request, string) (*crewjam.EntityDescriptor, error) {
	return r.md, nil
}

// fuzzIdPSeeds returns a workspace SP as the service builds it from the
// metadata of an IdP made here, and form values (base64) of responses
// that IdP signed for it: encrypted and not, with attributes.
func fuzzIdPSeeds(tb testing.TB) (fuzzTarget, []string) {
	now := time.Now()
	spKey, spCert, err := selfSigned("fuzz sp")
	if err != nil {
		tb.Fatal(err)
	}
	idpKey, idpCert, err := selfSigned("fuzz idp")
	if err != nil {
		tb.Fatal(err)
	}
	base, _ := url.Parse("https://scimjit.test")
	s := &Service{cfg: Config{BaseURL: base, Key: spKey, Certificate: spCert}}
	mdURL, _ := url.Parse("https://idp.test/metadata")
	ssoURL, _ := url.Parse("https://idp.test/sso")
	idp := &crewjam.IdentityProvider{Key: idpKey, Signer: idpKey, Certificate: idpCert, MetadataURL: *mdURL,
		SSOURL: *ssoURL, SignatureMethod: dsig.RSASHA256SignatureMethod, Clock: dsig.NewFakeClockAt(now)}
	md, err := xml.Marshal(idp.Metadata())
	if err != nil {
		tb.Fatal(err)
	}
	ws := storage.Workspace{ID: "fuzz", Settings: storage.DefaultSettings()}
	ws.Settings.IdP.MetadataXML = string(md)
	ws.Settings.IdP.AllowIdPInitiated = true
	sp, err := s.buildSP(ws, newKeyring(0, keyPair{key: spKey, cert: spCert}))
	if err != nil {
		tb.Fatal(err)
	}
	sp.Clock = dsig.NewFakeClockAt(now)

	var seeds []string
	for _, encrypt := range []bool{true, false} {
		spMD := sp.Metadata()
		if !encrypt {
			for i := range spMD.SPSSODescriptors {
				var kds []crewjam.KeyDescriptor
				for _, kd := range spMD.SPSSODescriptors[i].KeyDescriptors {
					if kd.Use != "encryption" {
						kds = append(kds, kd)
					}
				}
				spMD.SPSSODescriptors[i].KeyDescriptors = kds
			}
		}
		idp.ServiceProviderProvider = spRegistry{md: spMD}
		req, err := idp.NewIdpInitiatedRequest(httptest.NewRequest(http.MethodGet, ssoURL.String(), nil), sp.EntityID, "")
		if err != nil {
			tb.Fatal(err)
		}
		attr := func(name, v string) crewjam.Attribute {
			return crewjam.Attribute{Name: name, Values: []crewjam.AttributeValue{{Type: "xs:string", Value: v}}}
		}
		sess := &crewjam.Session{ID: "s1", CreateTime: now, ExpireTime: now.Add(time.Hour), Index: "i1",
			NameID: "jane.doe@acme.example", NameIDFormat: string(crewjam.EmailAddressNameIDFormat),
			CustomAttributes: []crewjam.Attribute{attr("workato_role", "Admin"), attr("workato_full_name", "Jane Doe"),
				attr("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/workato_role_prod", "Analyst")}}
		if err := (crewjam.DefaultAssertionMaker{}).MakeAssertion(req, sess); err != nil {
			tb.Fatal(err)
		}
		if err := req.MakeResponse(); err != nil {
			tb.Fatal(err)
		}
		doc := etree.NewDocument()
		doc.SetRoot(req.ResponseEl)
		b, err := doc.WriteToBytes()
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, base64.StdEncoding.EncodeToString(b))
	}
	return fuzzTarget{sp: sp}, seeds
}

// fuzzFixtures are crewjam's captured real-IdP responses (testdata/crewjam)
// with the service providers that accept them at their time.
func fuzzFixtures(tb testing.TB) ([]fuzzTarget, []string) {
	cases := []struct {
		metadata, response, base, requestID string
		now                                 time.Time
		isBase64                            bool
	}{
		{"TestSPCanHandleOneloginResponse_IDPMetadata", "TestSPCanHandleOneloginResponse_response", "https://29ee6d2e.ngrok.io",
			"id-d40c15c104b52691eccf0a2a5c8a15595be75423", time.Date(2016, 1, 5, 17, 53, 12, 0, time.UTC), true},
		{"TestSPCanHandleOktaResponseEncryptedAssertionBothSigned_IDPMetadata", "TestSPCanHandleOktaResponseEncryptedAssertionBothSigned_response",
			"http://localhost:8000", "id-953d4cab69ff475c5901d12e585b0bb15a7b85fe", time.Date(2020, 3, 3, 19, 40, 54, 0, time.UTC), true},
		{"TestSPCanHandleEntraIDResponse_IDPMetadata", "TestSPCanHandleEntraIDResponse_encrypted_assertion_signed",
			"https://sp.example.com", "id-4f6e2c9d8a7b1e3f5d0c2b4a6e8f1d3c5b7a9e0f", time.Date(2025, 6, 2, 15, 4, 6, 0, time.UTC), false},
		{"TestSPCanHandleEntraIDResponse_IDPMetadata", "TestSPCanHandleEntraIDResponse_response_signed",
			"https://sp.example.com", "id-4f6e2c9d8a7b1e3f5d0c2b4a6e8f1d3c5b7a9e0f", time.Date(2025, 6, 2, 15, 4, 6, 0, time.UTC), false},
	}
	var targets []fuzzTarget
	var seeds []string
	for _, c := range cases {
		sp := fixtureSP(tb, c.metadata, c.base, c.now)
		targets = append(targets, fuzzTarget{sp: sp, ids: []string{c.requestID}})
		raw := string(fixture(tb, c.response))
		if !c.isBase64 {
			raw = base64.StdEncoding.EncodeToString([]byte(raw))
		}
		seeds = append(seeds, raw)
	}
	return targets, seeds
}

// FuzzACSResponse posts any SAMLResponse form value to the ACS's parsing
// and validation: the form decoding, crewjam's base64 decoding, XML
// parsing, decryption and checks (ParseResponse, with the ACS's deferred
// replay cache), the mapping of a refusal to its reason, and of an
// accepted assertion to an identity. None of it may panic, for our own
// workspace SP (built from IdP metadata as the service builds it) and
// for the SPs of crewjam's captured Okta, OneLogin and Entra responses.
// The input is the response's XML, base64-encoded here as an IdP does
// (mutating the XML reaches further than mutating its base64), or with
// asFormValue the form value itself.
func FuzzACSResponse(f *testing.F) {
	own, ownSeeds := fuzzIdPSeeds(f)
	targets, seeds := fuzzFixtures(f)
	targets = append(targets, own)
	seeds = append(seeds, ownSeeds...)
	for _, s := range seeds {
		xmlDoc, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(xmlDoc, false)
		f.Add(xmlDoc[:len(xmlDoc)/2], false) // truncated
		f.Add([]byte(s[:len(s)/3]+"%%"), true)
	}
	f.Add([]byte(""), true)
	f.Add([]byte("not base64 at all %%%"), true)
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>`), false)
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`), false)
	f.Fuzz(func(t *testing.T, data []byte, asFormValue bool) {
		value := string(data)
		if !asFormValue {
			value = base64.StdEncoding.EncodeToString(data)
		}
		body := url.Values{"SAMLResponse": {value}, "RelayState": {"/"}}.Encode()
		for _, tg := range targets {
			r := httptest.NewRequest(http.MethodPost, tg.sp.AcsURL.String(), strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if err := r.ParseForm(); err != nil {
				t.Fatalf("form of a url-encoded value: %v", err)
			}
			spc := *tg.sp
			spc.ReplayCache = &noteReplay{}
			a, err := spc.ParseResponse(r, tg.ids)
			if err != nil {
				if reason, private := refusalReason(err); reason == "" || private == nil {
					t.Fatalf("refusal without a reason: %q %v", reason, private)
				}
				continue
			}
			_, _ = mapIdentity(a)
		}
	})
}

// TestFuzzACSSeedsAreAccepted: every seed response of FuzzACSResponse is
// accepted by its own service provider, so the fuzzer starts from inputs
// that reach the end of the validation and the identity mapping.
func TestFuzzACSSeedsAreAccepted(t *testing.T) {
	own, ownSeeds := fuzzIdPSeeds(t)
	targets, seeds := fuzzFixtures(t)
	for range ownSeeds {
		targets = append(targets, own)
	}
	seeds = append(seeds, ownSeeds...)
	for i, tg := range targets {
		r := &http.Request{PostForm: url.Values{"SAMLResponse": {seeds[i]}}, URL: &tg.sp.AcsURL}
		r.Form = r.PostForm
		spc := *tg.sp
		spc.ReplayCache = &noteReplay{}
		a, err := spc.ParseResponse(r, tg.ids)
		if err != nil {
			_, private := refusalReason(err)
			t.Fatalf("seed %d refused: %v", i, private)
		}
		if _, err := mapIdentity(a); err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
	}
}
