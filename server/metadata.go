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
)

// defaultMetadataClient downloads IdP metadata given as idp.metadataURL.
var defaultMetadataClient = &http.Client{Timeout: 15 * time.Second}

// resolveMetadataURL downloads idp.metadataURL, when the patch has one, and
// turns it into idp.metadataXML. Only the administrator can give the URL;
// still, only https is fetched, redirects are limited, the size is capped
// and the answer must parse as IdP metadata afterwards (normalizeSettings).
func resolveMetadataURL(ctx context.Context, client *http.Client, log *slog.Logger, p *SettingsPatch) error {
	if p == nil || p.IdP == nil || p.IdP.MetadataURL == nil {
		return nil
	}
	raw := *p.IdP.MetadataURL
	p.IdP.MetadataURL = nil
	if p.IdP.MetadataXML != nil {
		return &ValidationError{Problems: []string{"settings.idp: give metadataXML or metadataURL, not both"}}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return &ValidationError{Problems: []string{"settings.idp.metadataURL must be an https URL"}}
	}
	if client == nil {
		client = defaultMetadataClient
	}
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		if req.URL.Scheme != "https" {
			return errors.New("redirect away from https")
		}
		return nil
	}
	fail := func(reason string, err error) error {
		log.WarnContext(ctx, "fetch idp metadata", "url", u.Redacted(), "err", err)
		return &ValidationError{Problems: []string{"settings.idp.metadataURL: could not download the metadata: " + reason}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail("invalid URL", err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := c.Do(req)
	if err != nil {
		return fail("connection, TLS or redirect failure (see the server log)", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Sprintf("HTTP status %d", resp.StatusCode), fmt.Errorf("status %s", resp.Status))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return fail("read error", err)
	}
	if len(data) > maxMetadataBytes {
		return fail(fmt.Sprintf("larger than %d bytes", maxMetadataBytes), errors.New("too large"))
	}
	xml := string(data)
	p.IdP.MetadataXML = &xml
	return nil
}
