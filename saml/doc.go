// Package saml is scimjit's browser side: one SAML service provider per
// workspace (crewjam/saml), the assertion consumer with its checks,
// just-in-time provisioning, server-side sessions, the join flow with
// email verification, workspace switching, and the demo identity provider
// and demo webhook receiver used in demo mode.
//
// A sign-in runs one way through three files: acs.go validates the
// response and consumes the assertion ID, jit.go decides from what the
// store knows of the person (create by JIT, sign a member in, join), and
// join.go mails and confirms the verification of a join. The pages, logs
// and events of a sign-in that does not succeed are in refuse.go.
//
// Where things are:
//
//   - service.go: Config, New, Register (every browser route).
//   - sp.go: the per-workspace crewjam ServiceProvider (built from the
//     uploaded IdP metadata, cached by workspace and key version), SP
//     metadata with every published certificate, and SP-initiated login
//     with the AuthnRequest tracked in Redis and bound to the browser.
//   - spkeys.go: the SP key pairs every process shares through the store
//     (created once, optionally encrypted with Config.SecretKey, re-read
//     every Config.KeyRefresh) and their rotation (RotateSPKey,
//     PromoteSPKey).
//   - metadata.go: parsing and validating IdP metadata
//     (ParseIdPMetadata, ValidateIdPMetadata), for the admin API too.
//   - acs.go: the ACS (HTTP-POST binding) and the replay cache.
//   - slo.go: logout (POST /logout) and Single Logout with the IdP
//     (/saml/{ws}/slo), both directions, where the IdP metadata offers it.
//   - jit.go: what a validated sign-in does, and the one membership
//     builder of JIT and joins.
//   - join.go, join_mail.go, join_outbox.go: the join flow.
//   - refuse.go: refusal pages, warn logs and login.refused events, and the
//     503 "try again" page when the store does not answer.
//   - limits.go: the rate limits of the login and the ACS and the ACS body
//     limit (Config.LoginLimit, ACSClientLimit, ACSWorkspaceLimit,
//     ACSBodyLimit) with their 429 and 413 pages.
//   - attributes.go: attribute names and values → email, name, roles.
//   - session.go, render.go, me.go, switch.go: sessions (ended when their
//     membership is deactivated or deleted), CSRF tokens, pages (with
//     ErrorPage, the page of every failed browser request),
//     /api/v1/me, the home page and workspace switching.
//   - demo.go: the demo IdP (Config.Demo only); demo_webhooks.go: the
//     demo webhook receiver and its page /demo/webhooks.
//   - mail/: mail delivery.
//
// docs/saml.md describes the behaviour; docs/idp-*.md the IdP setup.
package saml
