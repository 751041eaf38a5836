// Package server wires scimjit's HTTP side with Echo: the route table (health,
// readiness, the admin API, SCIM under /scim/v2/{workspace}, the SAML and
// browser routes of package saml), Echo's middleware configured for it
// (request ids, one access-log line per request, panic recovery, security
// headers, body-size limits) and client IP extraction, the error renderer
// (SCIM error JSON under /scim/, plain JSON on the other API paths, the
// error page of package saml on browser paths),
// http.Server timeouts and graceful shutdown. It also applies the declarative
// workspace file given with --bootstrap, and downloads IdP metadata given by
// URL (metadata.go: public addresses only unless allowed) and refreshes it
// on a schedule in one background loop per process (mdrefresh.go). It knows HTTP
// and wiring, never Redis: the store arrives built in Config, and the work
// that needs it to answer (Config.Startup) runs while the server already
// listens, retried with backoff.
//
// Where things are: server.go (Config, New, the route table, Run),
// startup.go (the startup gate and its retries), middleware.go, errors.go,
// admin.go, admintokens.go (the named admin tokens) and settings.go (the
// admin API), bootstrap.go, metadata.go, mdrefresh.go, metrics.go.
package server
