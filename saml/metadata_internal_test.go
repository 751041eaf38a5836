package saml

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"
)

// metadataNow is the fixed "now" the metadata checks are run at.
var metadataNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// certBetween is a base64 DER certificate valid from notBefore to
// notAfter, with a key of the shared test key pair.
func certBetween(t *testing.T, notBefore, notAfter time.Time) string {
	t.Helper()
	key, _, err := selfSigned("metadata test key")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp.example.test"},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// idpEntity is the metadata of a usable IdP at metadataNow: an HTTP-POST
// single sign-on endpoint and a signing certificate valid for a year
// around it.
func idpEntity(t *testing.T) *crewjam.EntityDescriptor {
	t.Helper()
	sso, _ := url.Parse("https://idp.example.test/sso")
	md, _ := url.Parse("https://idp.example.test/metadata")
	key, cert, err := selfSigned("idp.example.test")
	if err != nil {
		t.Fatal(err)
	}
	ed := (&crewjam.IdentityProvider{Key: key, Certificate: cert, MetadataURL: *md, SSOURL: *sso}).Metadata()
	ed.ValidUntil = metadataNow.Add(48 * time.Hour)
	ed.IDPSSODescriptors[0].KeyDescriptors = []crewjam.KeyDescriptor{signingKey(certBetween(t,
		metadataNow.AddDate(0, -6, 0), metadataNow.AddDate(0, 6, 0)), "signing")}
	return ed
}

func signingKey(cert, use string) crewjam.KeyDescriptor {
	return crewjam.KeyDescriptor{Use: use, KeyInfo: crewjam.KeyInfo{X509Data: crewjam.X509Data{
		X509Certificates: []crewjam.X509Certificate{{Data: cert}}}}}
}

func marshalMetadata(t *testing.T, v any) string {
	t.Helper()
	b, err := xml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestValidateIdPMetadata: metadata an IdP could not sign anybody in with
// is refused with a reason an administrator can act on; usable metadata
// gives its entity ID.
func TestValidateIdPMetadata(t *testing.T) {
	expired := certBetween(t, metadataNow.AddDate(-2, 0, 0), metadataNow.AddDate(0, 0, -1))
	cases := []struct {
		name   string
		mutate func(*crewjam.EntityDescriptor)
		raw    string // used instead of the (mutated) entity when set
		want   string // "" for accepted
	}{
		{name: "usable", mutate: func(*crewjam.EntityDescriptor) {}},
		{name: "no validUntil", mutate: func(ed *crewjam.EntityDescriptor) { ed.ValidUntil = time.Time{} }},
		{name: "redirect binding only", mutate: func(ed *crewjam.EntityDescriptor) {
			ed.IDPSSODescriptors[0].SingleSignOnServices = ed.IDPSSODescriptors[0].SingleSignOnServices[:1]
			ed.IDPSSODescriptors[0].SingleSignOnServices[0].Binding = crewjam.HTTPRedirectBinding
		}},
		{name: "key without use", mutate: func(ed *crewjam.EntityDescriptor) {
			ed.IDPSSODescriptors[0].KeyDescriptors[0].Use = ""
		}},
		{name: "rolled over: an expired and a current signing certificate", mutate: func(ed *crewjam.EntityDescriptor) {
			d := &ed.IDPSSODescriptors[0]
			d.KeyDescriptors = append([]crewjam.KeyDescriptor{signingKey(expired, "signing")}, d.KeyDescriptors...)
		}},
		{name: "not XML", raw: "hello", want: "not SAML metadata"},
		{name: "too large", raw: strings.Repeat(" ", MaxIdPMetadataBytes+1), want: "larger than"},
		{name: "no entityID", mutate: func(ed *crewjam.EntityDescriptor) { ed.EntityID = "" }, want: "no entityID"},
		{name: "expired metadata", mutate: func(ed *crewjam.EntityDescriptor) { ed.ValidUntil = metadataNow.Add(-time.Minute) },
			want: "the metadata expired on 2026-06-01T11:59:00Z"},
		{name: "service provider metadata", mutate: func(ed *crewjam.EntityDescriptor) {
			ed.IDPSSODescriptors = nil
			ed.SPSSODescriptors = []crewjam.SPSSODescriptor{{}}
		}, want: "no IDPSSODescriptor"},
		{name: "no usable sso endpoint", mutate: func(ed *crewjam.EntityDescriptor) {
			for i := range ed.IDPSSODescriptors[0].SingleSignOnServices {
				ed.IDPSSODescriptors[0].SingleSignOnServices[i].Binding = crewjam.SOAPBinding
			}
		}, want: "no SingleSignOnService"},
		{name: "encryption key only", mutate: func(ed *crewjam.EntityDescriptor) {
			ed.IDPSSODescriptors[0].KeyDescriptors[0].Use = "encryption"
		}, want: "no signing certificate in the IDPSSODescriptor"},
		{name: "garbage base64", mutate: func(ed *crewjam.EntityDescriptor) {
			ed.IDPSSODescriptors[0].KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data = "!!not*base64!!"
		}, want: `certificate 1 (KeyDescriptor use="signing"): not valid base64`},
		{name: "not a certificate", mutate: func(ed *crewjam.EntityDescriptor) {
			ed.IDPSSODescriptors[0].KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data = "aGVsbG8gd29ybGQ="
		}, want: "certificate 1 (KeyDescriptor use=\"signing\"): not an X.509 certificate"},
		{name: "expired signing certificate", mutate: func(ed *crewjam.EntityDescriptor) {
			ed.IDPSSODescriptors[0].KeyDescriptors[0] = signingKey(expired, "signing")
		}, want: "no signing certificate is valid now (certificate 1 expired on 2026-05-31T12:00:00Z)"},
		{name: "signing certificate not yet valid", mutate: func(ed *crewjam.EntityDescriptor) {
			ed.IDPSSODescriptors[0].KeyDescriptors[0] = signingKey(certBetween(t, metadataNow.AddDate(0, 0, 1), metadataNow.AddDate(1, 0, 0)), "")
		}, want: "certificate 1 is valid from 2026-06-02T12:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := tc.raw
			if md == "" {
				ed := idpEntity(t)
				tc.mutate(ed)
				md = marshalMetadata(t, ed)
			}
			got, err := ValidateIdPMetadata(md, metadataNow)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "" && got != "https://idp.example.test/metadata":
				t.Fatalf("entity ID %q", got)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestParseIdPMetadataPicksTheConfiguredEntity: in an EntitiesDescriptor
// the configured entity ID picks the entity; an ID that is not there is an
// error, and without one the only identity provider is taken (and
// validated); with two and no entity ID none is.
func TestParseIdPMetadataPicksTheConfiguredEntity(t *testing.T) {
	first, second := idpEntity(t), idpEntity(t)
	second.EntityID = "https://second.example.test/metadata"
	md := marshalMetadata(t, &crewjam.EntitiesDescriptor{EntityDescriptors: []crewjam.EntityDescriptor{*first, *second}})

	ed, err := ParseIdPMetadata(md, second.EntityID)
	if err != nil || ed.EntityID != second.EntityID {
		t.Fatalf("by entity ID: %v, %v", ed, err)
	}
	if _, err := ParseIdPMetadata(md, "https://missing.example.test/metadata"); err == nil {
		t.Fatal("an entity ID that is not in the metadata was found")
	}
	if _, err := ParseIdPMetadata(md, ""); err == nil {
		t.Fatal("two identity providers and no entity ID: one was picked")
	}
	one := marshalMetadata(t, &crewjam.EntitiesDescriptor{EntityDescriptors: []crewjam.EntityDescriptor{*second}})
	if id, err := ValidateIdPMetadata(one, metadataNow); err != nil || id != second.EntityID {
		t.Fatalf("aggregate of one identity provider: %q, %v", id, err)
	}
}
