// Command scimjit runs the scimjit server and administers it.
//
//	scimjit [serve] [flags]        run the server (the default command)
//	scimjit workspace create|get|list|update|delete ...
//	scimjit token create|list|revoke ...
//	scimjit events WORKSPACE [--follow] [--type T] [--after ID] [--limit N]
//	scimjit users WORKSPACE [--filter F] [--attributes a,b] [--count N] [--sort-by X]
//	scimjit check [--workspace ID] [--fix] [--grace 10m] [--json]
//	scimjit healthcheck [--url URL]
//	scimjit version | --version
//	scimjit completion bash|zsh|fish|powershell
//
// The command tree is built with spf13/cobra (main.go); run executes a
// command line with injected environment, file reader and output streams,
// so tests run commands without a process.
//
// It is the only place that reads flags and the environment: every serve
// flag comes from the option table in options.go and has a SCIMJIT_*
// environment default (precedence flag > environment > built-in default),
// secrets can also come from files (SCIMJIT_*_FILE). It builds the logger,
// picks the storage backend (real Redis, or the embedded in-memory server
// plus demo mode when no Redis is configured) and hands plain values and
// built dependencies to package server. docs/configuration.md lists every
// setting. check (check.go) opens Redis with serve's options and runs
// redisstore's Store.Check. The client commands (cli.go, workspace.go,
// events.go, users.go) call a running server's admin and SCIM APIs and
// print tables, or the APIs' JSON with -o json; docs/cli.md describes them. Serve connects
// to Redis in the background (startup.go) and keeps the admin tokens of
// --admin-tokens-file current (admintokens.go).
package main
