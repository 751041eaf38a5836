package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/scimjit/scimjit/saml"
)

// Limits of a metadata download (idp.metadataURL in the admin API and the
// bootstrap file). Beyond saml.MaxIdPMetadataBytes the download is
// refused.
const (
	// metadataTimeout bounds a whole download, redirects included.
	metadataTimeout = 15 * time.Second
	// metadataDialTimeout bounds one TCP connection attempt.
	metadataDialTimeout = 10 * time.Second
	// metadataMaxRedirects is how many redirects are followed (https only).
	metadataMaxRedirects = 3
)

// newMetadataClient returns the client that downloads IdP metadata: base
// (default: one with metadataTimeout) connecting directly (never through
// a proxy from the environment) through a dialer that, unless
// allowPrivate, refuses every address that is not public (publicAddr).
// The check runs on the address actually dialled, after DNS resolution
// (net.Dialer.Control), so a name that resolves to an internal address,
// a DNS answer that changes between look-ups, or a redirect to an
// internal host are refused too. A base whose Transport is not an
// *http.Transport (only code can set one) is used as it is.
func newMetadataClient(base *http.Client, allowPrivate bool) *http.Client {
	c := http.Client{Timeout: metadataTimeout}
	if base != nil {
		c = *base
		if c.Timeout <= 0 {
			c.Timeout = metadataTimeout
		}
	}
	var tr *http.Transport
	switch t := c.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return &c
	}
	d := &net.Dialer{Timeout: metadataDialTimeout}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("metadata download: unexpected address %q", address)
			}
			if kind := nonPublicKind(ap.Addr()); kind != "" {
				return &privateAddrError{kind: kind}
			}
			return nil
		}
	}
	tr.Proxy = nil
	tr.DialContext = d.DialContext
	c.Transport = tr
	return &c
}

// privateAddrError is a refused connection to a non-public address.
type privateAddrError struct{ kind string }

func (e *privateAddrError) Error() string {
	return "refused to connect to a " + e.kind + " address"
}

// Special-purpose IPv4 ranges (RFC 6890) that are not public but that
// netip has no predicate for.
var nonPublicV4 = []struct {
	prefix netip.Prefix
	kind   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

// nat64 is the well-known NAT64 prefix (RFC 6052): its addresses reach the
// IPv4 address in their last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// nonPublicKind names the kind of a non-public address (loopback, private,
// link-local, unspecified, multicast and the other special-purpose
// ranges), or returns "" for a public one. IPv4-mapped and NAT64
// addresses are judged by the IPv4 address they carry.
func nonPublicKind(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	}
	if a.Is4() {
		if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return "broadcast"
		}
		for _, r := range nonPublicV4 {
			if r.prefix.Contains(a) {
				return r.kind
			}
		}
	}
	return ""
}

// metadataFetchError is a failed metadata download or a downloaded copy
// that is not usable. Reason is a short public sentence for an
// administrator (admin API, refresh state); the cause goes to the log.
type metadataFetchError struct{ Reason string }

func (e *metadataFetchError) Error() string { return e.Reason }

// fetchMetadata downloads an idp.metadataURL with client (from
// newMetadataClient): only https is fetched, redirects are limited (https
// only), the size is capped and non-public addresses are refused unless
// allowed. Failures are *metadataFetchError and are logged with their
// cause.
func fetchMetadata(ctx context.Context, client *http.Client, log *slog.Logger, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", &metadataFetchError{Reason: "not an https URL"}
	}
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= metadataMaxRedirects {
			return errors.New("too many redirects")
		}
		if req.URL.Scheme != "https" {
			return errors.New("redirect away from https")
		}
		return nil
	}
	fail := func(reason string, err error) error {
		log.WarnContext(ctx, "fetch idp metadata", "url", u.Redacted(), "err", err)
		return &metadataFetchError{Reason: reason}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fail("invalid URL", err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := c.Do(req)
	var private *privateAddrError
	if errors.As(err, &private) {
		return "", fail("the host (or a redirect) resolves to a "+private.kind+" address, which is refused "+
			"(--idp-metadata-allow-private-hosts allows it)", err)
	}
	if err != nil {
		return "", fail("connection, TLS or redirect failure (see the server log)", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fail(fmt.Sprintf("HTTP status %d", resp.StatusCode), fmt.Errorf("status %s", resp.Status))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, saml.MaxIdPMetadataBytes+1))
	if err != nil {
		return "", fail("read error", err)
	}
	if len(data) > saml.MaxIdPMetadataBytes {
		return "", fail(fmt.Sprintf("larger than %d bytes", saml.MaxIdPMetadataBytes), errors.New("too large"))
	}
	return string(data), nil
}
