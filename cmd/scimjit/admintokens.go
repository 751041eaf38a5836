package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/scimjit/scimjit/server"
)

// parseAdminTokens parses an --admin-tokens-file: one "name:token" per
// line, the name 1 to 64 of [A-Za-z0-9._-], the token as strong as
// --admin-token must be; blank lines and lines starting with # are
// skipped. A file without any token is refused. reserved names the names taken already (--admin-token's). It
// reports every problem, by line number and name, never showing a token.
func parseAdminTokens(data []byte, reserved ...string) ([]server.AdminToken, error) {
	var tokens []server.AdminToken
	var p configProblems
	seen := map[string]int{}
	for _, name := range reserved {
		seen[name] = 0
	}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, tok, ok := strings.Cut(line, ":")
		name, tok = strings.TrimSpace(name), strings.TrimSpace(tok)
		switch first, dup := seen[name]; {
		case !ok:
			p.add("line %d: not name:token", n)
			continue
		case !server.ValidAdminTokenName(name):
			p.add("line %d: name %q: use 1 to 64 letters, digits, '.', '_' or '-'", n, name)
			continue
		case dup && first == 0:
			p.add("line %d: name %q is taken by --admin-token", n, name)
			continue
		case dup:
			p.add("line %d: name %q is given twice (also on line %d)", n, name, first)
			continue
		}
		seen[name] = n
		if err := checkAdminToken(fmt.Sprintf("line %d: token %q", n, name), tok); err != nil {
			p.add("%v", err)
			continue
		}
		tokens = append(tokens, server.AdminToken{Name: name, Token: tok})
	}
	if len(p) == 0 && len(tokens) == 0 {
		// Also what a reload sees when it reads a file while it is
		// being rewritten in place.
		p.add("the file holds no token")
	}
	if len(p) > 0 {
		return nil, errors.New(strings.Join(p, "; "))
	}
	return tokens, nil
}

// adminTokensFile keeps a server.AdminTokens equal to --admin-token (named
// default) plus the tokens in --admin-tokens-file. A file that cannot be
// read or parsed leaves the tokens in force as they are.
type adminTokensFile struct {
	path      string
	flagToken string // --admin-token, or ""
	readFile  readFileFunc
	tokens    *server.AdminTokens
	log       *slog.Logger
	// last is the content last read, good or bad, and lastErr the last
	// problem reported: a file is parsed, and a problem logged, once.
	last    []byte
	lastErr string
}

// load reads and applies the file; serve refuses to start when the first
// load fails.
func (f *adminTokensFile) load() error {
	data, err := f.readFile(f.path)
	if err != nil {
		return fmt.Errorf("--admin-tokens-file: %w", err)
	}
	f.last = data
	if err := f.apply(data); err != nil {
		return fmt.Errorf("--admin-tokens-file %s: %w", f.path, err)
	}
	f.log.Info("admin tokens loaded", "file", f.path, "names", f.tokens.Names())
	return nil
}

func (f *adminTokensFile) apply(data []byte) error {
	var tokens []server.AdminToken
	var reserved []string
	if f.flagToken != "" {
		tokens = append(tokens, server.AdminToken{Name: server.DefaultAdminTokenName, Token: f.flagToken})
		reserved = append(reserved, server.DefaultAdminTokenName)
	}
	fromFile, err := parseAdminTokens(data, reserved...)
	if err != nil {
		return err
	}
	return f.tokens.Set(append(tokens, fromFile...))
}

// reload re-reads the file: when its content changed, or always when
// forced (SIGHUP). A problem is logged at error level once, and the tokens
// in force stay.
func (f *adminTokensFile) reload(force bool) {
	data, err := f.readFile(f.path)
	if err == nil && !force && bytes.Equal(data, f.last) {
		f.lastErr = ""
		return
	}
	if err == nil {
		f.last = data
		err = f.apply(data)
	}
	if err != nil {
		if err.Error() != f.lastErr || force {
			f.lastErr = err.Error()
			f.log.Error("admin tokens file rejected; the tokens in force stay", "file", f.path, "err", err)
		}
		return
	}
	f.lastErr = ""
	f.log.Info("admin tokens reloaded", "file", f.path, "names", f.tokens.Names())
}

// watch reloads the file every interval when it changed, and at once on
// each value from hup (SIGHUP), until ctx ends. It polls rather than
// using inotify (fsnotify): a Kubernetes Secret or ConfigMap volume
// replaces the file through a symlink swap that a watch on the file itself
// misses, and reading a file of a few lines every few seconds costs
// nothing.
func (f *adminTokensFile) watch(ctx context.Context, interval time.Duration, hup <-chan os.Signal) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.reload(false)
		case <-hup:
			f.log.Info("SIGHUP: re-reading the admin tokens file", "file", f.path)
			f.reload(true)
		}
	}
}

// startAdminTokens builds the admin token set: adminToken (named default)
// and, with --admin-tokens-file, the file's tokens, then kept current from
// the file until stop is called or ctx ends.
func startAdminTokens(ctx context.Context, cfg serveConfig, adminToken string, readFile readFileFunc, log *slog.Logger) (tokens *server.AdminTokens, stop func(), err error) {
	tokens = &server.AdminTokens{}
	if cfg.AdminTokensFile == "" {
		if adminToken != "" {
			err = tokens.Set([]server.AdminToken{{Name: server.DefaultAdminTokenName, Token: adminToken}})
		}
		return tokens, func() {}, err
	}
	f := &adminTokensFile{path: cfg.AdminTokensFile, flagToken: adminToken, readFile: readFile, tokens: tokens, log: log}
	if err := f.load(); err != nil {
		return nil, nil, err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.watch(wctx, cfg.AdminTokensReload, hup)
	}()
	return tokens, func() {
		signal.Stop(hup)
		cancel()
		<-done
	}, nil
}
