package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/server/netguard"
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
	netguard.Direct(tr, metadataDialTimeout, allowPrivate)
	c.Transport = tr
	return &c
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
	var private *netguard.RefusedError
	if errors.As(err, &private) {
		return "", fail("the host (or a redirect) resolves to a "+private.Kind+" address, which is refused "+
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
