// Package reqctx holds the request-scoped values that travel in a
// context.Context (request id, workspace, the admin token's name) and a slog.Handler that adds them
// to every log record, and ClientKey, the rate-limit bucket of a client
// address. It is a leaf package so that server, scimhandlers and
// saml can all use it without import cycles.
package reqctx
