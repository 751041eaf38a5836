package saml

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
)

// MaxIdPMetadataBytes caps a workspace's IdP metadata (uploaded or
// downloaded).
const MaxIdPMetadataBytes = 512 << 10

// ParseIdPMetadata parses SAML 2.0 metadata: an EntityDescriptor, or an
// EntitiesDescriptor holding one. With an entityID it picks that entity
// and fails when there is none of that ID; without one it takes the first.
// It does not check that the entity can be used (ValidateIdPMetadata).
func ParseIdPMetadata(metadataXML, entityID string) (*crewjam.EntityDescriptor, error) {
	var ed *crewjam.EntityDescriptor
	var err error
	if entityID != "" {
		ed, err = samlsp.ParseMetadataByEntityID([]byte(metadataXML), entityID)
	} else {
		ed, err = samlsp.ParseMetadata([]byte(metadataXML))
	}
	if err != nil {
		return nil, err
	}
	if entityID != "" && ed.EntityID != entityID {
		return nil, fmt.Errorf("idp metadata entity id %q is not the configured %q", ed.EntityID, entityID)
	}
	return ed, nil
}

// ValidateIdPMetadata checks that metadataXML describes an identity
// provider scimjit can sign people in with at now, and returns its entity
// ID: SAML 2.0 metadata (ParseIdPMetadata, first entity) of at most
// MaxIdPMetadataBytes, not past its validUntil (saml-metadata-2.0-os
// §2.3.2), with an IDPSSODescriptor that has a SingleSignOnService with
// the HTTP-Redirect or HTTP-POST binding, readable certificates and a
// signing certificate valid at now. The errors are short sentences for an
// administrator, without the metadata's text.
func ValidateIdPMetadata(metadataXML string, now time.Time) (entityID string, err error) {
	if len(metadataXML) > MaxIdPMetadataBytes {
		return "", fmt.Errorf("larger than %d bytes", MaxIdPMetadataBytes)
	}
	ed, err := ParseIdPMetadata(metadataXML, "")
	if err != nil {
		return "", errors.New("not SAML metadata (an EntityDescriptor is expected)")
	}
	if ed.EntityID == "" {
		return "", errors.New("the EntityDescriptor has no entityID")
	}
	if !ed.ValidUntil.IsZero() && now.After(ed.ValidUntil) {
		return "", fmt.Errorf("the metadata expired on %s (validUntil): download a current copy from the identity provider",
			ed.ValidUntil.UTC().Format(time.RFC3339))
	}
	if len(ed.IDPSSODescriptors) == 0 {
		return "", errors.New("no IDPSSODescriptor: this is not an identity provider's metadata")
	}
	var sso bool
	var signing, current int // signing certificates, and those valid at now
	var expired string       // why the first signing certificate outside its validity is
	n := 0                   // certificates seen, for the error messages
	for _, d := range ed.IDPSSODescriptors {
		for _, e := range d.SingleSignOnServices {
			if e.Location != "" && (e.Binding == crewjam.HTTPRedirectBinding || e.Binding == crewjam.HTTPPostBinding) {
				sso = true
			}
		}
		for _, k := range d.KeyDescriptors {
			for _, c := range k.KeyInfo.X509Data.X509Certificates {
				n++
				cert, err := parseCertificate(c.Data)
				if err != nil {
					return "", fmt.Errorf("certificate %d (KeyDescriptor use=%q): %w", n, k.Use, err)
				}
				if k.Use != "" && k.Use != "signing" {
					continue
				}
				signing++
				// The SAML library refuses a signature whose certificate is
				// outside its validity (ErrCertificateNotValidNow).
				switch {
				case now.After(cert.NotAfter):
					if expired == "" {
						expired = fmt.Sprintf("certificate %d expired on %s", n, cert.NotAfter.UTC().Format(time.RFC3339))
					}
				case now.Before(cert.NotBefore):
					if expired == "" {
						expired = fmt.Sprintf("certificate %d is valid from %s", n, cert.NotBefore.UTC().Format(time.RFC3339))
					}
				default:
					current++
				}
			}
		}
	}
	switch {
	case !sso:
		return "", errors.New("no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding")
	case signing == 0:
		return "", errors.New("no signing certificate in the IDPSSODescriptor")
	case current == 0:
		return "", fmt.Errorf("no signing certificate is valid now (%s)", expired)
	}
	return ed.EntityID, nil
}

// parseCertificate reads an X509Certificate element's text the way the
// SAML library reads it when it verifies a signature (white space
// ignored, standard base64, DER X.509): a certificate it cannot read
// would make every sign-in of the workspace fail.
func parseCertificate(data string) (*x509.Certificate, error) {
	b64 := strings.Map(func(r rune) rune {
		if strings.ContainsRune(" \t\n\f\r", r) { // the library's \s
			return -1
		}
		return r
	}, data)
	if b64 == "" {
		return nil, errors.New("empty")
	}
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("not valid base64")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("not an X.509 certificate (%v)", err)
	}
	return cert, nil
}

// IdPMetadataFacts is what a downloaded copy of IdP metadata says about
// its refresh and its keys (InspectIdPMetadata).
type IdPMetadataFacts struct {
	// RefreshBy is the earliest of the validUntil times and of now plus
	// the cacheDuration values of the entity and its IDPSSODescriptors
	// (saml-metadata-2.0-os §2.3.2, §2.4.1); zero when none is given.
	RefreshBy time.Time
	// SigningCertificates are the SHA-256 fingerprints (lower-case hex of
	// the DER) of the IDPSSODescriptors' signing certificates (use
	// "signing" or no use), sorted and without repeats. The SAML library
	// accepts a signature made with any of them, which is what lets an
	// IdP publish its next certificate before it switches to it.
	SigningCertificates []string
	// CertificateExpiry is the earliest expiry (NotAfter) of those
	// certificates; zero when there is none.
	CertificateExpiry time.Time
}

// InspectIdPMetadata reads IdPMetadataFacts from metadata that
// ValidateIdPMetadata accepted (entityID as for ParseIdPMetadata).
func InspectIdPMetadata(metadataXML, entityID string, now time.Time) (IdPMetadataFacts, error) {
	ed, err := ParseIdPMetadata(metadataXML, entityID)
	if err != nil {
		return IdPMetadataFacts{}, err
	}
	var f IdPMetadataFacts
	sooner := func(t time.Time) {
		if !t.IsZero() && (f.RefreshBy.IsZero() || t.Before(f.RefreshBy)) {
			f.RefreshBy = t
		}
	}
	cache := func(d time.Duration) {
		if d > 0 {
			sooner(now.Add(d))
		}
	}
	sooner(ed.ValidUntil)
	cache(ed.CacheDuration)
	for _, d := range ed.IDPSSODescriptors {
		if d.ValidUntil != nil {
			sooner(*d.ValidUntil)
		}
		cache(d.CacheDuration)
		for _, k := range d.KeyDescriptors {
			if k.Use != "" && k.Use != "signing" {
				continue
			}
			for _, c := range k.KeyInfo.X509Data.X509Certificates {
				cert, err := parseCertificate(c.Data)
				if err != nil {
					return IdPMetadataFacts{}, err
				}
				if f.CertificateExpiry.IsZero() || cert.NotAfter.Before(f.CertificateExpiry) {
					f.CertificateExpiry = cert.NotAfter
				}
				sum := sha256.Sum256(cert.Raw)
				f.SigningCertificates = append(f.SigningCertificates, hex.EncodeToString(sum[:]))
			}
		}
	}
	slices.Sort(f.SigningCertificates)
	f.SigningCertificates = slices.Compact(f.SigningCertificates)
	return f, nil
}
