package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
)

const spKeyLong = `Shows and rotates the SAML service provider key pairs that every scimjit
process shares through Redis (unless --saml-key-file is set).

Rotation takes two steps, so that identity providers that re-read the SP
metadata never see a gap:

  scimjit sp-key rotate    creates the next key pair; every process publishes
                           its certificate in /saml/{workspace}/metadata
                           (next to the current one) within a minute, and
                           accepts assertions encrypted to it
  scimjit sp-key promote   once the identity providers have the new metadata:
                           the next key signs from now on; the old one stays
                           published and still decrypts until the next
                           promotion

The Redis, log and --secret-key flags and their SCIMJIT_* environment
variables are those of serve; see docs/saml.md, "Service provider keys".`

// spKeyOptions are serve's Redis and log options and --secret-key.
var spKeyOptions = func() []option {
	out := append([]option{}, storeOptions...)
	for _, o := range serveOptions {
		if o.Flag == "secret-key" {
			out = append(out, o)
		}
	}
	return out
}()

// newSPKeyCmd is `scimjit sp-key show|rotate|promote`.
func newSPKeyCmd(env environ, readFile readFileFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sp-key",
		Short: "Show and rotate the SAML service provider keys shared in Redis",
		Long:  spKeyLong,
		Args:  cobra.NoArgs,
	}
	sub := func(use, short string, run func(ctx context.Context, store storage.Store, secret string, out io.Writer) error) *cobra.Command {
		c := &cobra.Command{Use: use + " [Redis, log and --secret-key flags]", Short: short, Args: cobra.NoArgs}
		c.Flags().SortFlags = false
		opts := addOptions(c.Flags(), spKeyOptions)
		c.RunE = func(c *cobra.Command, _ []string) error {
			vals, fileProblems := opts.resolve(env, readFile)
			return runSPKey(c.Context(), vals, fileProblems, c.OutOrStdout(), c.ErrOrStderr(), run)
		}
		return c
	}
	show := sub("show", "Print the certificates' SHA-256 fingerprints and expiry", func(ctx context.Context, store storage.Store, _ string, out io.Writer) error {
		k, err := store.SPKeys(ctx)
		if errors.Is(err, storage.ErrNotFound) {
			return saml.ErrNoSPKeys
		}
		if err != nil {
			return err
		}
		return printSPKeys(out, k)
	})
	var replace bool
	rotate := sub("rotate", "Create the next key pair and publish its certificate in the SP metadata", func(ctx context.Context, store storage.Store, secret string, out io.Writer) error {
		k, err := saml.RotateSPKey(ctx, store, secret, "scimjit SP", replace)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, "next key pair created; its certificate is in the SP metadata within a minute. Once the identity providers have re-read the metadata, run scimjit sp-key promote.")
		return printSPKeys(out, k)
	})
	rotate.Flags().BoolVar(&replace, "replace", false, "replace a next key pair that was not promoted yet")
	promote := sub("promote", "Make the next key pair current (the old one stays published and still decrypts)", func(ctx context.Context, store storage.Store, _ string, out io.Writer) error {
		k, err := saml.PromoteSPKey(ctx, store)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, "next key pair promoted; every process signs with it within a minute.")
		return printSPKeys(out, k)
	})
	cmd.AddCommand(show, rotate, promote)
	return cmd
}

// runSPKey opens Redis with serve's options and runs one sp-key step.
func runSPKey(ctx context.Context, vals map[string]resolved, fileProblems []string, stdout, stderr io.Writer,
	run func(ctx context.Context, store storage.Store, secret string, out io.Writer) error) error {
	cfg, p := newStoreCommandConfig(vals, "used", fileProblems...)
	if err := checkSecretKey(vals["secret-key"].Value); err != nil {
		p.add("%v", err)
	}
	if err := p.err(); err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	redisstore.SetLogger(log)
	store, err := cfg.open(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Warn("close store", "err", err)
		}
	}()
	return run(ctx, store, vals["secret-key"].Value, stdout)
}

// printSPKeys prints one line per key pair: role, SHA-256 fingerprint of
// the certificate, expiry, creation, whether the private key is encrypted.
func printSPKeys(w io.Writer, k storage.SPKeys) error {
	infos, err := saml.DescribeSPKeys(k)
	if err != nil {
		return err
	}
	for _, i := range infos {
		enc := "plain"
		if i.Encrypted {
			enc = "encrypted"
		}
		fmt.Fprintf(w, "%s\tsha256=%s\texpires=%s\tcreated=%s\t%s\n", i.Role, i.SHA256,
			i.NotAfter.UTC().Format(time.RFC3339), i.CreatedAt.UTC().Format(time.RFC3339), enc)
	}
	return nil
}
