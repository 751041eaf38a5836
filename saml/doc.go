// Package saml is scimjit's browser side: one SAML service provider per
// workspace (crewjam/saml), the assertion consumer with its checks (R16),
// just-in-time provisioning (R1–R7, R12), server-side sessions, the join
// flow with email verification (R8–R10), workspace switching (R11), and the
// demo identity provider used in demo mode.
//
// Where things are:
//
//   - service.go: Config, New, Register (every browser route).
//   - sp.go: the per-workspace crewjam ServiceProvider (built from the
//     uploaded IdP metadata, cached by workspace version), SP metadata and
//     SP-initiated login with the AuthnRequest tracked in Redis and bound to
//     the browser.
//   - acs.go: the ACS (HTTP-POST binding), the Redis replay cache and the
//     refusal path (page, warn log, login.refused event).
//   - limits.go: the rate limits of the login and the ACS and the ACS body
//     limit (Config.LoginLimit, ACSClientLimit, ACSWorkspaceLimit,
//     ACSBodyLimit) with their 429 and 413 pages.
//   - attributes.go: attribute names and values → email, name, roles (R2–R5).
//   - jit.go: what a validated sign-in does (create, sign in, refuse, join).
//   - session.go, render.go, me.go: sessions (ended when their membership
//     is deactivated or deleted), CSRF tokens, pages, /api/v1/me, home page
//     and logout.
//   - demo.go: the demo IdP (Config.Demo only).
//   - join*.go, switch*.go, mail/: the join flow, switching and mail delivery.
//
// docs/saml.md describes the behaviour; docs/idp-*.md the IdP setup.
package saml
