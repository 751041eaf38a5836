package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimjit/scimjit/server"
)

// newWebhooksCmd is `scimjit webhooks ...` over the admin API
// (/admin/v1/workspaces/WORKSPACE/webhooks...).
func newWebhooksCmd(env environ, readFile readFileFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "webhooks",
		Aliases: []string{"webhook"},
		Short:   "Manage a workspace's webhook endpoints and look into their deliveries",
		Long: `Manages a workspace's webhook endpoints through the admin API: the URLs
scimjit signs and posts every event to (docs/webhooks.md), their secrets, the
delivery attempts and the deliveries that failed for good.

--type takes an event type (user.created) or a prefix of some (user.*); no
--type means every event.`,
	}
	cf := addClientFlags(cmd, adminTokenOption, env, readFile)
	endpoint := decoded(printWebhook)
	// withSecret prints an endpoint with its new secret, and says on
	// stderr that the secret is shown only now.
	withSecret := func(c *cobra.Command, data []byte) error {
		if err := endpoint(c, data); err != nil {
			return err
		}
		_, err := fmt.Fprintln(c.ErrOrStderr(), "The secret is shown only now: give it to the receiver, which verifies the signatures with it.")
		return err
	}
	epPath := func(ws, id string) string { return wsPath(ws) + "/webhooks/" + url.PathEscape(id) }

	list := &cobra.Command{
		Use:   "list WORKSPACE",
		Short: "List a workspace's webhook endpoints (never their secrets)",
		Args:  exactArgs("WORKSPACE"),
		RunE: func(c *cobra.Command, args []string) error {
			return cf.call(c, http.MethodGet, wsPath(args[0])+"/webhooks", nil, decoded(printWebhooks))
		},
	}

	create := &cobra.Command{
		Use:   "create WORKSPACE --url URL [--description D] [--type T]...",
		Short: "Add a webhook endpoint and print its signing secret (shown only this once)",
		Example: `  scimjit webhooks create finance --url https://app.example.com/scimjit --type 'user.*' --type group.member_added
  scimjit webhooks create finance --url https://hooks.example.com/all --description "audit trail"`,
		Args: exactArgs("WORKSPACE"),
	}
	createURL := create.Flags().String("url", "", "https URL the events are posted to (required)")
	createDesc := create.Flags().String("description", "", "what the endpoint is for (at most 100 characters)")
	createTypes := create.Flags().StringArray("type", nil, "deliver only this event type or prefix (user.*); repeat for more; none: every event")
	create.RunE = func(c *cobra.Command, args []string) error {
		if *createURL == "" {
			return exitError{code: 2, err: errors.New("--url is required")}
		}
		body := map[string]any{"url": *createURL, "description": *createDesc}
		if c.Flags().Changed("type") {
			body["types"] = *createTypes
		}
		return cf.call(c, http.MethodPost, wsPath(args[0])+"/webhooks", body, withSecret)
	}

	get := &cobra.Command{
		Use:   "get WORKSPACE ENDPOINT_ID",
		Short: "Show a webhook endpoint",
		Args:  exactArgs("WORKSPACE", "ENDPOINT_ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return cf.call(c, http.MethodGet, epPath(args[0], args[1]), nil, endpoint)
		},
	}

	update := &cobra.Command{
		Use:   "update WORKSPACE ENDPOINT_ID [--url URL] [--description D] [--type T]... [--enable | --disable]",
		Short: "Change a webhook endpoint (only what is given)",
		Long: `Changes what the flags give and nothing else. --type replaces the whole
filter; --type '' alone clears it (every event). --enable also clears the
reason an endpoint was disabled by the server (a 410 answer).`,
		Args: exactArgs("WORKSPACE", "ENDPOINT_ID"),
	}
	upURL := update.Flags().String("url", "", "new URL")
	upDesc := update.Flags().String("description", "", "new description")
	upTypes := update.Flags().StringArray("type", nil, "new filter: event type or prefix; repeat for more; '' alone: every event")
	enable := update.Flags().Bool("enable", false, "deliver to the endpoint again")
	disable := update.Flags().Bool("disable", false, "stop delivering to the endpoint (events are not kept for it)")
	update.MarkFlagsMutuallyExclusive("enable", "disable")
	update.RunE = func(c *cobra.Command, args []string) error {
		body := map[string]any{}
		if c.Flags().Changed("url") {
			body["url"] = *upURL
		}
		if c.Flags().Changed("description") {
			body["description"] = *upDesc
		}
		if c.Flags().Changed("type") {
			types := []string{}
			for _, t := range *upTypes {
				if t != "" {
					types = append(types, t)
				}
			}
			body["types"] = types
		}
		if *enable || *disable {
			body["enabled"] = *enable
		}
		if len(body) == 0 {
			return exitError{code: 2, err: errors.New("nothing to change: give --url, --description, --type, --enable or --disable")}
		}
		return cf.call(c, http.MethodPatch, epPath(args[0], args[1]), body, endpoint)
	}

	del := &cobra.Command{
		Use:   "delete WORKSPACE ENDPOINT_ID",
		Short: "Delete a webhook endpoint",
		Args:  exactArgs("WORKSPACE", "ENDPOINT_ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return cf.call(c, http.MethodDelete, epPath(args[0], args[1]), nil, func(c *cobra.Command, _ []byte) error {
				_, err := fmt.Fprintf(c.OutOrStdout(), "webhook endpoint %s deleted\n", args[1])
				return err
			})
		},
	}

	rotate := &cobra.Command{
		Use:   "rotate-secret WORKSPACE ENDPOINT_ID [--overlap 24h]",
		Short: "Give the endpoint a new signing secret and print it (shown only this once)",
		Long: `Gives the endpoint a new signing secret. During the overlap (24h unless
--overlap says otherwise, at most 720h) every delivery carries a signature
with the old secret too, so the receiver can switch to the new one at its pace.`,
		Args: exactArgs("WORKSPACE", "ENDPOINT_ID"),
	}
	overlap := rotate.Flags().Duration("overlap", 24*time.Hour, "how long the previous secret keeps signing (0s: stops at once)")
	rotate.RunE = func(c *cobra.Command, args []string) error {
		return cf.call(c, http.MethodPost, epPath(args[0], args[1])+"/rotate-secret",
			map[string]string{"overlap": overlap.String()}, withSecret)
	}

	// attempts is a listing of an endpoint's deliveries with --limit.
	attempts := func(name, short, sub string, print func(c *cobra.Command, data []byte) error) *cobra.Command {
		a := &cobra.Command{
			Use:   name + " WORKSPACE ENDPOINT_ID [--limit N]",
			Short: short,
			Args:  exactArgs("WORKSPACE", "ENDPOINT_ID"),
		}
		limit := a.Flags().Int("limit", 0, "at most this many (1 to 1000; default: the server's, 100)")
		a.RunE = func(c *cobra.Command, args []string) error {
			path := epPath(args[0], args[1]) + "/" + sub
			if c.Flags().Changed("limit") {
				path += "?limit=" + strconv.Itoa(*limit)
			}
			return cf.call(c, http.MethodGet, path, nil, print)
		}
		return a
	}
	deliveries := attempts("deliveries", "List the endpoint's last delivery attempts, newest first (time, event, status, latency, error)",
		"deliveries", decoded(printDeliveries))
	failed := attempts("failed", "List the deliveries to the endpoint that failed for good (retries exhausted), newest first; kept 90 days, at most the newest 10,000 failures of the deployment",
		"failed", decoded(printFailed))

	redeliver := &cobra.Command{
		Use:   "redeliver WORKSPACE ENDPOINT_ID (EVENT_ID | --since TIME)",
		Short: "Deliver a failed event again, or every event since a time",
		Long: `With EVENT_ID, queues the failed delivery of that event (see "failed") again.
With --since (RFC 3339, e.g. 2026-12-01T08:00:00Z), queues every event of
the workspace since that time that the endpoint's filter takes, delivered or
not, as new copies each time: the receiver must accept duplicates (the
webhook-id header is the same; user and group payloads show the resource as
it is now). The endpoint must be enabled.`,
		Example: `  scimjit webhooks redeliver finance ENDPOINT_ID EVENT_ID
  scimjit webhooks redeliver finance ENDPOINT_ID --since 2026-12-01T08:00:00Z`,
		Args: cobra.RangeArgs(2, 3),
	}
	since := redeliver.Flags().String("since", "", "redeliver every event from this time (RFC 3339)")
	redeliver.RunE = func(c *cobra.Command, args []string) error {
		queued := decoded(func(w io.Writer, r struct{ Queued int }) error {
			_, err := fmt.Fprintf(w, "%d deliveries queued\n", r.Queued)
			return err
		})
		switch {
		case len(args) == 3 && *since == "":
			return cf.call(c, http.MethodPost, epPath(args[0], args[1])+"/failed/"+url.PathEscape(args[2])+"/redeliver", nil, queued)
		case len(args) == 2 && *since != "":
			t, err := time.Parse(time.RFC3339, *since)
			if err != nil {
				return exitError{code: 2, err: fmt.Errorf("--since %q: use an RFC 3339 time like 2026-12-01T08:00:00Z", *since)}
			}
			return cf.call(c, http.MethodPost, epPath(args[0], args[1])+"/redeliver", map[string]time.Time{"since": t}, queued)
		}
		return exitError{code: 2, err: errors.New("give either EVENT_ID or --since TIME")}
	}

	cmd.AddCommand(list, create, get, update, del, rotate, deliveries, failed, redeliver)
	return cmd
}

// printWebhook writes one endpoint, its secret when the answer has one.
func printWebhook(w io.Writer, ep server.WebhookJSON) error {
	t := newTable(w, "ID:", ep.ID)
	t.row("URL:", ep.URL)
	t.row("Description:", ep.Description)
	t.row("Types:", webhookTypes(ep.Types))
	t.row("Enabled:", enabledText(ep))
	if len(ep.PreviousSecretsExpireAt) > 0 {
		t.row("Previous secrets until:", strings.Join(ep.PreviousSecretsExpireAt, ", "))
	}
	if ep.Secret != "" {
		t.row("Secret:", ep.Secret)
	}
	return t.flush()
}

// printWebhooks writes an endpoint list as a table.
func printWebhooks(w io.Writer, resp struct{ Webhooks []server.WebhookJSON }) error {
	t := newTable(w, "ID", "URL", "TYPES", "ENABLED", "DESCRIPTION")
	for _, ep := range resp.Webhooks {
		t.row(ep.ID, ep.URL, webhookTypes(ep.Types), enabledText(ep), ep.Description)
	}
	return t.flush()
}

func webhookTypes(types []string) string {
	if len(types) == 0 {
		return "all"
	}
	return strings.Join(types, ",")
}

func enabledText(ep server.WebhookJSON) string {
	if ep.Enabled {
		return "yes"
	}
	if ep.DisabledReason != "" {
		return "no (" + ep.DisabledReason + ")"
	}
	return "no"
}

// printDeliveries writes the delivery attempts as a table; STATUS is the
// HTTP status, or - when none came back (see ERROR).
func printDeliveries(w io.Writer, resp struct{ Deliveries []server.DeliveryJSON }) error {
	t := newTable(w, "TIME", "EVENT", "TYPE", "ATTEMPT", "STATUS", "LATENCY", "ERROR")
	for _, d := range resp.Deliveries {
		status := ""
		if d.Status != 0 {
			status = strconv.Itoa(d.Status)
		}
		t.row(d.Time.Format(time.RFC3339), d.EventID, d.Type, strconv.Itoa(d.Attempt), status,
			strconv.FormatFloat(d.LatencyMS, 'f', 1, 64)+"ms", d.Error)
	}
	return t.flush()
}

// printFailed writes the deliveries that failed for good as a table.
func printFailed(w io.Writer, resp struct{ Failed []server.FailedJSON }) error {
	t := newTable(w, "FAILED AT", "EVENT", "TYPE", "ATTEMPTS", "LAST ERROR")
	for _, f := range resp.Failed {
		t.row(f.FailedAt.Format(time.RFC3339), f.EventID, f.Type, strconv.Itoa(f.Attempts), f.LastError)
	}
	return t.flush()
}
