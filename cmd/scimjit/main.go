package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// errReported reports a failure that was already logged (serve, once its
// logger exists): exit code 1, nothing more to print.
var errReported = errors.New("reported")

const rootLong = `scimjit: SCIM 2.0 provisioning and SAML just-in-time sign-in for several workspaces.

With no command, scimjit runs the server: "scimjit --listen 0.0.0.0:8080" is
"scimjit serve --listen 0.0.0.0:8080", and plain "scimjit" starts it in demo
mode when no Redis is configured.

Exit status: 0 on success, 1 on an error, 2 on a command-line mistake
(check has its own, see "scimjit check --help").`

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

// exitError ends a command with its own exit code; err, when set, is
// printed first.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// run runs a command line and returns the exit code: 0 on success, 1 when
// the command failed, 2 when the command line itself is wrong (unknown
// command or flag, wrong arguments), or the code of an exitError.
func run(ctx context.Context, args []string, env environ, readFile readFileFunc, stdout, stderr io.Writer) int {
	root := newRootCmd(env, readFile)
	root.SetArgs(defaultToServe(args))
	root.SetOut(stdout)
	root.SetErr(stderr)
	// Cobra parses flags and checks arguments before the pre-run hook: an
	// error before it is a command-line mistake.
	started := false
	root.PersistentPreRun = func(*cobra.Command, []string) { started = true }
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	switch {
	case errors.As(err, &ee):
		if ee.err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), ee.err)
		}
		return ee.code
	case !started:
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", cmd.CommandPath(), err, cmd.CommandPath())
		return 2
	case errors.Is(err, errReported):
		return 1
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
	return 1
}

// defaultToServe makes serve the default command, which cobra has no
// setting for: a command line that is empty or starts with a flag other
// than help or version runs serve, as "go run ./cmd/scimjit" in the quick
// start does.
func defaultToServe(args []string) []string {
	if len(args) == 0 {
		return []string{"serve"}
	}
	switch args[0] {
	case "-h", "--help", "-v", "--version":
		return args
	}
	if strings.HasPrefix(args[0], "-") {
		return append([]string{"serve"}, args...)
	}
	return args
}

// newRootCmd builds the command tree. env and readFile stand for
// os.LookupEnv and os.ReadFile, so tests run commands without a process.
func newRootCmd(env environ, readFile readFileFunc) *cobra.Command {
	root := &cobra.Command{
		Use:           "scimjit",
		Short:         "SCIM 2.0 provisioning and SAML just-in-time sign-in for several workspaces",
		Long:          rootLong,
		Version:       buildVersion(),
		SilenceErrors: true, // run prints them with the command's name
		SilenceUsage:  true, // a server error is not a usage problem
	}
	root.SetVersionTemplate("scimjit {{.Version}}\n")
	root.AddCommand(
		newServeCmd(env, readFile),
		newWorkspaceCmd(env, readFile),
		newTokenCmd(env, readFile),
		newEventsCmd(env, readFile),
		newMembersCmd(env, readFile),
		newWebhooksCmd(env, readFile),
		newUsersCmd(env, readFile),
		newCheckCmd(env, readFile),
		newSPKeyCmd(env, readFile),
		newHealthcheckCmd(env),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run: func(cmd *cobra.Command, _ []string) {
				fmt.Fprintln(cmd.OutOrStdout(), "scimjit", buildVersion())
			},
		},
	)
	return root
}

// newServeCmd is `scimjit serve`; its flags come from serveOptions.
func newServeCmd(env environ, readFile readFileFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the server (the default command)",
		Long: `Runs the scimjit server until Ctrl-C or SIGTERM. Every flag has an environment
default (SCIMJIT_ + the flag in upper case); secrets can also come from a file
named by the variable with _FILE appended. Precedence: flag, environment,
file, default. docs/configuration.md describes every setting.`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().SortFlags = false // the table's order groups related options
	opts := addOptions(cmd.Flags(), serveOptions)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		vals, fileProblems := opts.resolve(env, readFile)
		return serve(cmd.Context(), vals, fileProblems, env, readFile, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
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
