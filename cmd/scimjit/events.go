package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimjit/scimjit/server"
)

// eventsPollInterval is how often events --follow asks for new events.
var eventsPollInterval = 2 * time.Second

// eventsPage is how many events one request reads (the API's maximum).
const eventsPage = 1000

// newEventsCmd is `scimjit events WORKSPACE`.
func newEventsCmd(env environ, readFile readFileFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events WORKSPACE [--follow] [--type T ...] [--after ID] [--limit N]",
		Short: "Show (and with --follow, tail) a workspace's event stream",
		Long: `Shows a workspace's events, oldest first: SCIM changes, JIT creations, joins,
sign-ins and refused sign-ins, admin changes.

Without --after it shows the last --limit events (like tail); with --after ID
the events after that one, at most --limit. --follow then keeps asking for new
events every 2 seconds until Ctrl-C. --type keeps only the given types: an
exact type (login.refused) or a prefix ending in "." or "*" (login., scim.user*);
repeat it or separate types with commas.

-o json prints the API's answer ({"events": [...], "next": ID}; next is the
cursor for --after); with --follow, one JSON event per line.`,
		Args: exactArgs("WORKSPACE"),
	}
	cf := addClientFlags(cmd, adminTokenOption, env, readFile)
	follow := cmd.Flags().BoolP("follow", "f", false, "keep printing new events until Ctrl-C")
	types := cmd.Flags().StringSlice("type", nil, "show only these event types or prefixes (login.refused, scim.user.*, admin.)")
	after := cmd.Flags().String("after", "", "start after this event id (the next of an earlier answer)")
	limit := cmd.Flags().Int("limit", 100, "at most this many events before --follow goes on (0: no limit)")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		asJSON, err := cf.json()
		if err != nil {
			return err
		}
		if *limit < 0 {
			return exitError{code: 2, err: errors.New("--limit must be 0 or more")}
		}
		api, err := cf.client()
		if err != nil {
			return err
		}
		t := eventTail{api: api, ws: args[0], types: *types, cursor: *after}
		return t.run(c.Context(), *follow, *limit, asJSON, c.OutOrStdout())
	}
	return cmd
}

// eventTail reads a workspace's events from a cursor on. The admin API
// has no type parameter, so types are matched here.
type eventTail struct {
	api    *apiClient
	ws     string
	types  []string
	cursor string // id of the last event read ("" = the start)
}

// next reads every event after the cursor, page by page, and returns those
// that match the types.
func (t *eventTail) next(ctx context.Context) ([]server.EventJSON, error) {
	var out []server.EventJSON
	for {
		q := url.Values{"limit": {strconv.Itoa(eventsPage)}}
		if t.cursor != "" {
			q.Set("after", t.cursor)
		}
		var resp struct {
			Events []server.EventJSON
			Next   string
		}
		if _, err := t.api.getJSON(ctx, wsPath(t.ws)+"/events?"+q.Encode(), &resp); err != nil {
			return nil, err
		}
		for _, e := range resp.Events {
			if t.matches(e.Type) {
				out = append(out, e)
			}
		}
		if resp.Next != "" {
			t.cursor = resp.Next
		}
		if len(resp.Events) < eventsPage {
			return out, nil
		}
	}
}

// matches reports whether typ is one of the types: exact, or a prefix
// given as "user." or "user.*".
func (t *eventTail) matches(typ string) bool {
	if len(t.types) == 0 {
		return true
	}
	for _, want := range t.types {
		prefix, isPrefix := strings.CutSuffix(want, "*")
		if isPrefix || strings.HasSuffix(want, ".") {
			if strings.HasPrefix(typ, prefix) {
				return true
			}
		} else if typ == want {
			return true
		}
	}
	return false
}

// run prints the events after the cursor (the last limit of them when it
// starts from the beginning, the first limit after an --after cursor), then
// with follow polls for new ones until ctx is done.
func (t *eventTail) run(ctx context.Context, follow bool, limit int, asJSON bool, w io.Writer) error {
	fromStart := t.cursor == ""
	events, err := t.next(ctx)
	if err != nil {
		return err
	}
	if limit > 0 && len(events) > limit {
		if fromStart {
			events = events[len(events)-limit:]
		} else {
			events = events[:limit]
			t.cursor = events[limit-1].ID
		}
	}
	if !follow {
		if asJSON {
			resp := map[string]any{"events": events}
			if t.cursor != "" {
				resp["next"] = t.cursor
			}
			data, err := json.Marshal(resp)
			if err != nil {
				return err
			}
			return writeJSON(w, data)
		}
		return printEvents(w, events, true)
	}
	enc := json.NewEncoder(w) // one event per line: a stream scripts read line by line
	emit := func(events []server.EventJSON, header bool) error {
		if asJSON {
			for _, e := range events {
				if err := enc.Encode(e); err != nil {
					return err
				}
			}
			return nil
		}
		return printEvents(w, events, header)
	}
	if err := emit(events, true); err != nil {
		return err
	}
	tick := time.NewTicker(eventsPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil // Ctrl-C ends --follow normally
		case <-tick.C:
		}
		events, err := t.next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if err := emit(events, false); err != nil {
			return err
		}
	}
}

// printEvents writes events as aligned columns. With --follow, later
// batches are aligned on their own and come without the header.
func printEvents(w io.Writer, events []server.EventJSON, header bool) error {
	if len(events) == 0 && !header {
		return nil
	}
	t := newTable(w)
	if header {
		t.row("ID", "TIME", "TYPE", "ACTOR", "USER", "DETAIL")
	}
	for _, e := range events {
		var detail []string
		for _, k := range slices.Sorted(maps.Keys(e.Detail)) {
			detail = append(detail, k+"="+e.Detail[k])
		}
		t.row(e.ID, e.Time.Format(time.RFC3339), e.Type, e.Actor, e.UserID, strings.Join(detail, " "))
	}
	return t.flush()
}
