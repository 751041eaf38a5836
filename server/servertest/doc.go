// Package servertest starts scimjit's whole HTTP stack for end-to-end tests:
// the real server (admin API, SCIM, SAML) on an httptest server over a
// redis-server that storage/redistest spawns on a free loopback port, with
// the log output captured for assertions. Every admin API exchange is
// checked against the server's OpenAPI document (Contract), so the document
// cannot drift from the code.
package servertest
