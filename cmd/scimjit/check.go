package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimjit/scimjit/storage/redisstore"
)

const checkLong = `Walks the records and indexes in Redis and reports every inconsistency, one
line per problem (kind, key, field, detail, fixed). With --fix it repairs what
is safe to repair; it is safe on a live server. The Redis and log flags and
their SCIMJIT_* environment variables are those of serve; see
docs/storage.md, "Checking and repairing".

Exit status: 0 when nothing is left to fix, 1 when problems remain, 2 on an
error.`

// newCheckCmd is `scimjit check`.
func newCheckCmd(env environ, readFile readFileFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check [--workspace ID] [--fix] [--grace 10m] [--json] [Redis and log flags]",
		Short: "Check (and with --fix repair) the records and indexes in Redis",
		Long:  checkLong,
		Args:  cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	ws := fs.String("workspace", "", "check only this workspace (default: every workspace, the workspace registry, the email index and the accounts)")
	fix := fs.Bool("fix", false, "repair what is safe to repair")
	grace := fs.Duration("grace", redisstore.DefaultCheckGrace, "account records younger than this that look unfinished are left alone (a create may be in flight)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	opts := addOptions(fs, storeOptions)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		vals, fileProblems := opts.resolve(env, readFile)
		return runCheck(cmd.Context(), vals, fileProblems, *ws, *fix, *grace, *asJSON, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}

// runCheck runs the check; its error carries the exit code (exitError).
func runCheck(ctx context.Context, vals map[string]resolved, fileProblems []string, ws string, fix bool, grace time.Duration, asJSON bool, stdout, stderr io.Writer) error {
	fail := func(err error) error { return exitError{code: 2, err: err} }
	cfg, err := newCheckConfig(vals, grace, fileProblems...)
	if err != nil {
		return fail(err)
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	redisstore.SetLogger(log)
	store, err := cfg.open(ctx)
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Warn("close store", "err", err)
		}
	}()
	log.Info("check: started", "addr", store.Addr(), "workspace", ws, "fix", fix)
	rep, err := store.Check(ctx, redisstore.CheckOptions{Workspace: ws, Fix: fix, Grace: grace, Logger: log})
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(rep); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		printCheckReport(stdout, rep, fix)
	}
	if err != nil {
		return fail(err)
	}
	if rep.Left() > 0 {
		return exitError{code: 1}
	}
	return nil
}

// printCheckReport writes one tab-separated line per problem (kind, key,
// field quoted or "-", detail, "fixed" or "not fixed") and a summary.
func printCheckReport(w io.Writer, rep redisstore.CheckReport, fix bool) {
	for _, p := range rep.Problems {
		field, status := "-", "not fixed"
		if p.Field != "" {
			field = strconv.Quote(p.Field)
		}
		if p.Fixed {
			status = "fixed"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.Kind, p.Key, field, p.Detail, status)
	}
	left := rep.Left()
	fmt.Fprintf(w, "checked %d workspaces, %d users, %d groups, %d accounts: %d problems, %d fixed, %d left\n",
		rep.Workspaces, rep.Users, rep.Groups, rep.Accounts, len(rep.Problems), len(rep.Problems)-left, left)
	if left > 0 && !fix {
		fmt.Fprintln(w, "run with --fix to repair what is safe to repair; the rest needs a person (docs/storage.md)")
	}
}

// checkConfig is the typed check configuration.
type checkConfig struct {
	redisConfig
	logConfig
}

// newCheckConfig converts the resolved Redis and log options and checks
// them with grace, reporting every problem at once.
func newCheckConfig(v map[string]resolved, grace time.Duration, earlier ...string) (checkConfig, error) {
	c, p := newStoreCommandConfig(v, "checked", earlier...)
	if grace <= 0 {
		p.add("--grace must be positive")
	}
	return c, p.err()
}

// newStoreCommandConfig converts and checks the Redis and log options of a
// command that works on a running deployment's Redis (check, sp-key); what
// is the command's verb for the error without Redis.
func newStoreCommandConfig(v map[string]resolved, what string, earlier ...string) (checkConfig, configProblems) {
	p := configProblems(earlier)
	r := optionReader{v, &p}
	c := checkConfig{r.redis(), r.log()}
	p = append(p, c.redisConfig.validate()...)
	p = append(p, c.logConfig.validate()...)
	if !c.RedisConfigured() {
		p.add("no Redis configured: set --redis-url or --redis-addrs (SCIMJIT_REDIS_URL, SCIMJIT_REDIS_ADDRS); "+
			"the embedded in-memory store lives only inside a running scimjit and cannot be %s", what)
	}
	return c, p
}
