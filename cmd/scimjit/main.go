package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// errUsage reports a usage error whose message was already printed.
var errUsage = errors.New("usage")

// errReported reports a failure that was already logged (serve, once its
// logger exists): exit code 1, nothing more to print.
var errReported = errors.New("reported")

const usage = `scimjit: SCIM 2.0 provisioning and SAML just-in-time sign-in for several workspaces.

Usage:
  scimjit [serve] [flags]     run the server (default; "scimjit serve -h" lists the flags)
  scimjit workspace ...       manage workspaces through the admin API
  scimjit token ...           manage SCIM tokens through the admin API
  scimjit check [--fix]       check (and repair) the records and indexes in Redis ("scimjit check -h")
  scimjit healthcheck         exit 0 when the local server answers /healthz (for containers)
  scimjit version             print the version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts the graceful shutdown, restore the
		// default handling so a second Ctrl-C ends the process at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.LookupEnv, os.ReadFile, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a command line and returns the exit code.
func run(ctx context.Context, args []string, env environ, readFile readFileFunc, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, env, readFile, stdout, stderr)
	case "workspace", "workspaces":
		err = workspaceCmd(ctx, args, env, readFile, stdout, stderr)
	case "token", "tokens":
		err = tokenCmd(ctx, args, env, readFile, stdout, stderr)
	case "check":
		return checkCmd(ctx, args, env, readFile, stdout, stderr)
	case "healthcheck":
		err = healthcheck(ctx, args, env, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "scimjit", buildVersion())
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "scimjit: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errReported):
		return 1
	}
	fmt.Fprintf(stderr, "scimjit %s: %v\n", cmd, err)
	return 1
}

// buildVersion is the -ldflags version, else the module version or VCS
// revision recorded by the Go toolchain.
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " (" + s.Value + ")"
		}
	}
	return v
}
