// Command scimjit runs the scimjit server and administers it.
//
//	scimjit [serve] [flags]        run the server (the default subcommand)
//	scimjit workspace create|get|list|update|delete ...
//	scimjit token create|list|revoke ...
//	scimjit check [--workspace ID] [--fix] [--grace 10m] [--json]
//	scimjit healthcheck [--url URL]
//	scimjit version
//
// It is the only place that reads flags and the environment: every serve
// flag has a SCIMJIT_* environment default (precedence flag > environment >
// built-in default), secrets can also come from files (SCIMJIT_*_FILE). It
// builds the logger, picks the storage backend (real Redis, or the embedded
// in-memory server plus demo mode when no Redis is configured) and hands
// plain values and built dependencies to package server. docs/configuration.md
// lists every setting. Serve connects to Redis in the background
// (startup.go) and keeps the admin tokens of --admin-tokens-file current
// (admintokens.go). check (check.go) opens Redis with serve's options and
// runs redisstore's Store.Check.
package main
