// Package saml is scimjit's browser side: one SAML service provider per
// workspace (crewjam/saml), the assertion consumer with its checks (R16),
// just-in-time provisioning (R1–R7, R12), server-side sessions, the join
// flow with email verification (R8–R10), workspace switching (R11), and the
// demo identity provider used in demo mode.
package saml
