package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck implements `scimjit healthcheck`: GET the server's /healthz
// (or --url) and exit 0 on 200. It exists for container HEALTHCHECKs on an
// image without curl.
func healthcheck(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scimjit healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := "127.0.0.1:8080"
	if v, ok := env("SCIMJIT_LISTEN"); ok && v != "" {
		listen = v
	}
	target := fs.String("url", "", "URL to check (default: /healthz on SCIMJIT_LISTEN, with 0.0.0.0 as 127.0.0.1)")
	timeout := fs.Duration("timeout", 3*time.Second, "request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return fmt.Errorf("SCIMJIT_LISTEN %q is not host:port", listen)
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		*target = "http://" + net.JoinHostPort(host, port) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", *target, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
