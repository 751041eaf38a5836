package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// newHealthcheckCmd is `scimjit healthcheck`: GET the server's /healthz (or
// --url) and exit 0 on 200. It exists for container HEALTHCHECKs on an
// image without curl.
func newHealthcheckCmd(env environ) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "healthcheck [--url URL]",
		Short: "Exit 0 when the local server answers /healthz (for containers)",
		Args:  cobra.NoArgs,
	}
	target := cmd.Flags().String("url", "", "URL to check (default: /healthz on SCIMJIT_LISTEN, with 0.0.0.0 as 127.0.0.1)")
	timeout := cmd.Flags().Duration("timeout", 3*time.Second, "request timeout")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return healthcheck(cmd.Context(), *target, *timeout, env, cmd.OutOrStdout())
	}
	return cmd
}

func healthcheck(ctx context.Context, target string, timeout time.Duration, env environ, stdout io.Writer) error {
	if target == "" {
		listen := "127.0.0.1:8080"
		if v, ok := env("SCIMJIT_LISTEN"); ok && v != "" {
			listen = v
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return fmt.Errorf("SCIMJIT_LISTEN %q is not host:port", listen)
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		target = "http://" + net.JoinHostPort(host, port) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", target, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
