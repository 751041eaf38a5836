package saml

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/labstack/echo/v4"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

// wsPattern is the workspace slug (storage.Workspace).
var wsPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// errNoIdP: the workspace has no IdP metadata.
var errNoIdP = errors.New("workspace has no identity provider configured")

// serviceProvider returns the workspace's service provider, built from its
// IdP metadata (never fetched from a URL: tenant-supplied URLs would be
// SSRF) and the current SP keys (keys). It is cached per workspace and
// rebuilt when ws.Version or the keys' version changes; the returned value
// is shared and must not be modified (copy it).
func (s *Service) serviceProvider(ctx context.Context, ws storage.Workspace) (*crewjam.ServiceProvider, *keyring, error) {
	keys, err := s.keys(ctx)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	e, ok := s.sps[ws.ID]
	s.mu.Unlock()
	if ok && e.version == ws.Version && e.keys == keys.version {
		return e.sp, keys, nil
	}
	sp, err := s.buildSP(ws, keys)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	if cur, ok := s.sps[ws.ID]; !ok || cur.version < ws.Version || (cur.version == ws.Version && cur.keys <= keys.version) {
		s.sps[ws.ID] = cachedSP{version: ws.Version, keys: keys.version, sp: sp}
	}
	s.mu.Unlock()
	return sp, keys, nil
}

func (s *Service) buildSP(ws storage.Workspace, keys *keyring) (*crewjam.ServiceProvider, error) {
	idp := ws.Settings.IdP
	if strings.TrimSpace(idp.MetadataXML) == "" {
		return nil, errNoIdP
	}
	ed, err := ParseIdPMetadata(idp.MetadataXML, idp.EntityID)
	if err != nil {
		return nil, fmt.Errorf("parse idp metadata: %w", err)
	}
	sp := s.baseSP(ws.ID, keys)
	sp.IDPMetadata = ed
	sp.AllowIDPInitiated = idp.AllowIdPInitiated
	// SHA-1 signatures are refused unless the workspace opts in (crewjam
	// checks every SignatureMethod and DigestMethod of each signature).
	sp.RejectSHA1Signatures = !idp.AllowSHA1
	return sp, nil
}

// baseSP is the workspace's SP without the IdP side: entity ID and
// metadata URL base+"/saml/{ws}/metadata", ACS base+"/saml/{ws}/acs"
// (HTTP-POST only: the artifact binding would make the server call a URL
// from tenant-supplied metadata), AuthnRequests and logout messages signed
// with RSA-SHA256 by the current key, the NameID format left to the IdP.
func (s *Service) baseSP(ws string, keys *keyring) *crewjam.ServiceProvider {
	return &crewjam.ServiceProvider{
		EntityID:                         s.urlString("/saml/" + ws + "/metadata"),
		Key:                              keys.current.key,
		Certificate:                      keys.current.cert,
		MetadataURL:                      s.url("/saml/" + ws + "/metadata"),
		AcsURL:                           s.url("/saml/" + ws + "/acs"),
		AuthnNameIDFormat:                crewjam.UnspecifiedNameIDFormat,
		AssertionConsumerServiceBindings: []string{crewjam.HTTPPostBinding},
		SignatureMethod:                  dsig.RSASHA256SignatureMethod,
		// Single Logout at base+"/saml/{ws}/slo" (slo.go).
		SloURL:         s.url("/saml/" + ws + "/slo"),
		LogoutBindings: []string{crewjam.HTTPRedirectBinding, crewjam.HTTPPostBinding},
	}
}

// spMetadata is the SP metadata with every published certificate: crewjam
// describes the current one (signing and encryption KeyDescriptors); the
// next and previous certificates get the same descriptors, so an IdP that
// re-reads the metadata trusts the next key before it signs and may
// encrypt to any key the service still decrypts with (saml-metadata-2.0-os
// §2.4.1.1 allows several KeyDescriptors of one use).
func spMetadata(sp *crewjam.ServiceProvider, keys *keyring) *crewjam.EntityDescriptor {
	md := sp.Metadata()
	for i := range md.SPSSODescriptors {
		d := &md.SPSSODescriptors[i]
		kds := d.KeyDescriptors
		for _, o := range keys.others {
			for _, kd := range kds {
				kd.KeyInfo.X509Data.X509Certificates = []crewjam.X509Certificate{{Data: base64.StdEncoding.EncodeToString(o.cert.Raw)}}
				d.KeyDescriptors = append(d.KeyDescriptors, kd)
			}
		}
	}
	return md
}

// workspace loads the workspace named by the :ws path parameter and puts
// its id into the request context for logging. ok is false when the
// response has been written (404 page or error).
func (s *Service) workspace(c echo.Context) (storage.Workspace, bool, error) {
	return s.workspaceFrom(c, s.cfg.Store.GetWorkspace)
}

// workspaceFrom is workspace with the store read of its choice (the ACS
// takes its tracked request in the same call).
func (s *Service) workspaceFrom(c echo.Context, get func(ctx context.Context, id string) (storage.Workspace, error)) (storage.Workspace, bool, error) {
	id := c.Param("ws")
	if !wsPattern.MatchString(id) {
		return storage.Workspace{}, false, s.showMessage(c, http.StatusNotFound, message{Title: "Not found", Text: "There is no such workspace."})
	}
	c.SetRequest(c.Request().WithContext(reqctx.WithWorkspace(c.Request().Context(), id)))
	ws, err := get(c.Request().Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		s.mu.Lock()
		delete(s.sps, id) // a deleted workspace's SP is not kept
		s.mu.Unlock()
		return storage.Workspace{}, false, s.showMessage(c, http.StatusNotFound, message{Title: "Not found", Text: "There is no such workspace."})
	}
	if err != nil {
		return storage.Workspace{}, false, s.storeFailed(c, "get workspace", err)
	}
	return ws, true, nil
}

// handleMetadata serves the workspace's SP metadata (entity ID, ACS URL,
// certificate) for the IdP admin. It needs no IdP configured yet, so an
// admin can set the IdP side up first.
func (s *Service) handleMetadata(c echo.Context) error {
	ws, ok, err := s.workspace(c)
	if !ok {
		return err
	}
	keys, err := s.keys(c.Request().Context())
	if err != nil {
		return s.storeFailed(c, "sp keys", err)
	}
	buf, err := xml.MarshalIndent(spMetadata(s.baseSP(ws.ID, keys), keys), "", "  ")
	if err != nil {
		return fmt.Errorf("marshal sp metadata: %w", err)
	}
	return c.Blob(http.StatusOK, "application/samlmetadata+xml", append([]byte(xml.Header), buf...))
}

// A tracked request is an SP-initiated AuthnRequest waiting for its
// answer, stored under "authn:<RelayState>" for requestTTL. The RelayState
// is 128 random bits and the AuthnRequest's ID is derived from it
// (authnRequestID), so the record only binds it to the browser that
// started it and keeps where to land: a version byte, the first 16 bytes
// of the SHA-256 of the browser-binding cookie, and the return path
// unless it is "/". With its key and expiry that is 136 bytes of Redis
// memory for a workspace id of four letters, plus any return path
// (MEMORY USAGE on Redis 7; TestTrackedRequestMemory).
const (
	// trackedV1 is the record's version byte; a record of another version
	// (or an older JSON one) is treated as unknown.
	trackedV1 = 1
	// relayBytes is the RelayState's random length (22 characters).
	relayBytes = 16
	// bindHashLen is how much of the binding cookie's SHA-256 is kept.
	bindHashLen = 16
)

// authnRequestID is the ID of the AuthnRequest sent with RelayState relay
// (an XML NCName: relay is base64url). The ID and the RelayState travel
// together to the IdP and back, so deriving one from the other reveals
// nothing; the stored record still ties them to one browser.
func authnRequestID(relay string) string { return "id-" + relay }

// encodeTracked is the record of a tracked request started by the browser
// holding binding cookie bind, to land on ret.
func encodeTracked(bind, ret string) []byte {
	h := sha256.Sum256([]byte(bind))
	rec := append([]byte{trackedV1}, h[:bindHashLen]...)
	if ret != "/" {
		rec = append(rec, ret...)
	}
	return rec
}

// trackedBy reports whether the record was started by the browser holding
// binding cookie bind, and returns its return path.
func trackedBy(rec []byte, bind string) (ret string, ok bool) {
	if len(rec) < 1+bindHashLen || rec[0] != trackedV1 {
		return "", false
	}
	h := sha256.Sum256([]byte(bind))
	if subtle.ConstantTimeCompare(h[:bindHashLen], rec[1:1+bindHashLen]) != 1 {
		return "", false
	}
	if ret = string(rec[1+bindHashLen:]); ret == "" {
		ret = "/"
	}
	return ret, true
}

// bindCookie names the cookie that ties an AuthnRequest to the browser that
// started it (login CSRF: an attacker cannot make a victim's browser
// complete the attacker's login, because the victim lacks this cookie).
const bindCookie = "scimjit_saml_bind"

// loginClient is the rate-limit bucket of a client IP (c.RealIP(): the TCP
// peer, or the X-Forwarded-For entry chosen by --trusted-proxies): an IPv4
// address (IPv4-mapped IPv6 counts as IPv4), or for IPv6 its /64, since one
// host usually holds a whole /64 and could otherwise rotate addresses past
// the limit. It is hashed (hex SHA-256) so that the rate-limit key has a
// fixed shape and keeps no address in Redis. Echo's extractors only return
// parsed IPs; anything else would share one "invalid" bucket, so that odd
// input cannot mint fresh buckets.
func loginClient(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "invalid"
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64) // cannot fail: 64 bits fit an IPv6 address
		return hashToken(p.String())
	}
	return hashToken(a.String())
}

// allowLogin counts a login of this client in ws and reports whether it is
// within Config.LoginLimit. /saml/{ws}/login is unauthenticated and every
// call stores a tracked AuthnRequest for requestTTL, so the limit is what
// bounds the tracked requests one client keeps alive: about LoginLimit
// per minute of requestTTL, plus one burst (3,300 at the default). When
// false it has answered 429 with Retry-After and the plain message page.
// Nothing else is written for a refused login (no tracked request, and no
// login.refused event: that would be a write per request again).
func (s *Service) allowLogin(c echo.Context, ws string) (bool, error) {
	a, err := s.cfg.Store.Allow(c.Request().Context(), storage.Limit{Key: "saml:login:" + ws + ":" + loginClient(c.RealIP()),
		Rate: storage.PerMinute(s.cfg.LoginLimit)})
	if err != nil {
		// Fail closed, as the join-mail limit does: the try-again page
		// instead of a login. An unreachable store could not track the
		// AuthnRequest either, so failing open would gain nothing.
		return false, s.storeFailed(c, "login rate limit", err)
	}
	if a.OK {
		return true, nil
	}
	// No IP or other personal data in the log; workspace and request_id
	// come from the context.
	s.logWarn(c, "saml login refused: rate limit", "reason", "rate_limited", "per_minute", s.cfg.LoginLimit)
	return false, s.tooManySignIns(c, a.RetryAfter)
}

// handleLogin starts an SP-initiated login: it tracks a new AuthnRequest
// (id in Redis keyed by a random RelayState, bound to this browser by a
// cookie) and redirects to the IdP with the HTTP-Redirect binding
// (SAML bindings §3.4). ?return=/local/path chooses where to land. Logins
// are rate-limited per client network and workspace (Config.LoginLimit).
func (s *Service) handleLogin(c echo.Context) error {
	ws, ok, err := s.workspace(c)
	if !ok {
		return err
	}
	sp, _, err := s.serviceProvider(c.Request().Context(), ws)
	if errors.Is(err, storage.ErrUnavailable) {
		return s.storeFailed(c, "sp keys", err)
	}
	if errors.Is(err, errNoIdP) && ws.Settings.IdP.MetadataURL != "" {
		// The metadata URL is set but no download has succeeded yet
		// (the server retries it on a schedule).
		s.logWarn(c, "saml login: idp metadata not downloaded yet", "reason", ws.Settings.IdP.MetadataRefresh.LastError)
		return s.showMessage(c, http.StatusServiceUnavailable, message{Title: "Sign-in is not configured yet",
			Text: "This workspace's identity provider settings could not be downloaded yet. Try again later, or ask the workspace's administrator."})
	}
	if err != nil {
		s.logWarn(c, "saml login: no service provider", "err", err)
		return s.showMessage(c, http.StatusNotFound, message{Title: "Sign-in is not set up",
			Text: "This workspace has no identity provider configured for single sign-on."})
	}
	// HTTP-Redirect when the IdP offers it, else HTTP-POST (SAML bindings
	// §3.4, §3.5). Only http(s) endpoints are followed.
	binding := crewjam.HTTPRedirectBinding
	ssoURL := sp.GetSSOBindingLocation(binding)
	if ssoURL == "" {
		binding = crewjam.HTTPPostBinding
		ssoURL = sp.GetSSOBindingLocation(binding)
	}
	sso := httpURL(ssoURL)
	if sso == nil {
		s.logWarn(c, "saml login: idp metadata has no usable SSO endpoint", "binding", binding)
		return s.showMessage(c, http.StatusNotFound, message{Title: "Sign-in is not set up",
			Text: "This workspace's identity provider cannot be reached for sign-in."})
	}
	if ok, err := s.allowLogin(c, ws.ID); !ok {
		return err
	}
	// Made unsigned (as for the Redirect binding, which signs the query
	// string), given the ID derived from the RelayState, then signed for
	// the POST binding.
	relay := randomToken(relayBytes)
	authn, err := sp.MakeAuthenticationRequest(ssoURL, crewjam.HTTPRedirectBinding, crewjam.HTTPPostBinding)
	if err != nil {
		return fmt.Errorf("make authn request: %w", err)
	}
	authn.ID = authnRequestID(relay)
	if binding == crewjam.HTTPPostBinding {
		if err := sp.SignAuthnRequest(authn); err != nil {
			return fmt.Errorf("sign authn request: %w", err)
		}
	}
	bind := ""
	if ck, err := c.Cookie(bindCookie); err == nil && len(ck.Value) >= 32 {
		bind = ck.Value
	} else {
		bind = randomToken(32)
	}
	s.setBindCookie(c, bind)
	rec := encodeTracked(bind, localPath(c.QueryParam("return")))
	if err := s.cfg.Store.PutTemp(c.Request().Context(), ws.ID, trackedKey(relay), rec, requestTTL); err != nil {
		return fmt.Errorf("track authn request: %w", err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	if binding == crewjam.HTTPPostBinding {
		// A signed AuthnRequest in an auto-submitting form.
		return s.autoPost(c, sso, "Signing in", func(nonce string) []byte { return authn.PostWithNonce(relay, nonce) })
	}
	u, err := authn.Redirect(relay, sp)
	if err != nil {
		return fmt.Errorf("redirect authn request: %w", err)
	}
	return c.Redirect(http.StatusFound, u.String())
}

// setBindCookie sets the browser-binding cookie. The IdP answers with a
// cross-site POST, which carries SameSite=Lax cookies only when the IdP is
// same-site; with https the cookie is SameSite=None+Secure so it also
// travels with a real IdP's POST. Path /saml/ keeps it off other requests.
func (s *Service) setBindCookie(c echo.Context, v string) {
	ck := &http.Cookie{Name: bindCookie, Value: v, Path: s.cfg.BaseURL.Path + "/saml/",
		MaxAge: int(requestTTL / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if s.secureCookies() {
		ck.Secure = true
		ck.SameSite = http.SameSiteNoneMode
	}
	c.SetCookie(ck)
}

// validRelay reports whether relay can name a tracked request.
func validRelay(relay string) bool { return relay != "" && len(relay) <= 200 }

// trackedKey is the temp key of the request tracked under relay ("" when
// relay cannot name one).
func trackedKey(relay string) string {
	if !validRelay(relay) {
		return ""
	}
	return "authn:" + relay
}

// trackedRequest checks that this browser started the tracked request raw
// (taken from the store under trackedKey of the response's RelayState,
// single use; nil when none). It returns the possible request ids for
// ParseResponse (none when nothing matches) and the path to return to.
func (s *Service) trackedRequest(c echo.Context, raw []byte, relay string) (ids []string, ret string) {
	if raw == nil {
		return nil, ""
	}
	bind := ""
	if ck, cerr := c.Cookie(bindCookie); cerr == nil {
		bind = ck.Value
	}
	ret, ok := trackedBy(raw, bind)
	if !ok {
		// Started in another browser (or an unreadable record): answer
		// as if it were unknown, so the response's InResponseTo cannot
		// match.
		s.logWarn(c, "saml acs: tracked request was started by another browser")
		return nil, ""
	}
	return []string{authnRequestID(relay)}, ret
}

// localPath returns p when it is a path on this site ("/x?y"), else "/".
// It refuses absolute URLs, scheme-relative "//host" and "/\host" (which
// browsers treat as "//host"), and control characters.
func localPath(p string) string {
	if p == "" || p[0] != '/' || len(p) > 1024 {
		return "/"
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return "/"
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return p
}
