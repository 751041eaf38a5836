package console

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// eventsRead is how many events the events page reads per store call
// while it looks for matching ones.
const eventsRead = 500

// eventsScanned caps how many events one request of the events page (or
// of its live tail) reads: a filter that matches little stops there and
// offers to continue from where it stopped.
const eventsScanned = 10 * eventsRead

// eventFilter is what the events page shows: events whose type starts
// with Type and whose actor is Actor (as events record it: "scim",
// "user:<id>", "admin:<token name>", ...), each when not empty.
type eventFilter struct {
	Type, Actor string
}

func (f eventFilter) match(e storage.Event) bool {
	return strings.HasPrefix(e.Type, f.Type) && (f.Actor == "" || e.Actor == f.Actor)
}

// eventScan is what one bounded read of the events found.
type eventScan struct {
	Events []storage.Event
	// Last is the id of the last event read ("" when none was): the
	// cursor that continues the scan.
	Last string
	// End: the scan reached the newest event.
	End bool
}

// scanEvents reads the events of ws after the cursor after ("" = from the
// oldest), oldest first, in batches of eventsRead, and keeps those f
// matches, until it has want of them, reaches the newest event or has
// read eventsScanned. An after that is not a cursor is ErrNotFound.
func (h *Console) scanEvents(ctx context.Context, ws, after string, f eventFilter, want int) (eventScan, error) {
	s := eventScan{Last: after}
	for read := 0; read < eventsScanned; {
		list, err := h.cfg.Store.ListEvents(ctx, ws, s.Last, eventsRead)
		if err != nil {
			return s, err
		}
		for _, e := range list {
			s.Last = e.ID
			read++
			if f.match(e) {
				if s.Events = append(s.Events, e); len(s.Events) == want {
					return s, nil
				}
			}
		}
		if len(list) < eventsRead {
			s.End = true
			return s, nil
		}
	}
	return s, nil
}

// timeLayouts are the forms a time field takes: the browser's
// datetime-local value, and the same with a space, seconds or a zone.
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05",
	time.RFC3339, "2006-01-02"}

// parseFormTime reads a time field, in UTC unless it names a zone.
func parseFormTime(v string) (time.Time, bool) {
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, v, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// eventRows is the data of the rows template (part_eventrows.html).
type eventRows struct {
	WS     string
	Events []storage.Event
}

type eventsData struct {
	eventFilter
	// From is the time filter as typed; FromError why it was refused.
	From, FromError string
	After           string
	Rows            eventRows
	// Next continues after the last event read ("" at the newest);
	// Capped says the page stopped at eventsScanned, not full.
	Next   string
	Capped bool
	// TailAfter is the cursor the live tail starts from: the last event
	// read when the page reached the newest, else the time the page was
	// made (the events between are left to the pager: Gap).
	TailAfter string
	Gap       bool
}

// eventsPage shows the workspace's events oldest first, a page at a time,
// filtered by type prefix, actor and a start time (?from, read from that
// time's place in the stream, not scanned to), continued by ?after.
func (h *Console) eventsPage(c echo.Context) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	d := eventsData{eventFilter: eventFilter{Type: strings.TrimSpace(c.QueryParam("type")), Actor: strings.TrimSpace(c.QueryParam("actor"))},
		From: strings.TrimSpace(c.QueryParam("from")), After: c.QueryParam("after")}
	status, start := http.StatusOK, d.After
	if d.From != "" {
		from, ok := parseFormTime(d.From)
		if !ok {
			status, d.FromError = http.StatusBadRequest, "Give a time in UTC, like 2026-01-31 14:05."
		} else if start == "" {
			start = storage.EventsFrom(from)
		}
	}
	d.Rows.WS = ws.ID
	if status == http.StatusOK {
		s, err := h.scanEvents(c.Request().Context(), ws.ID, start, d.eventFilter, pageSize)
		if isNotFound(err) {
			return echo.NewHTTPError(http.StatusBadRequest, "unknown event cursor")
		}
		if err != nil {
			return err
		}
		d.Rows.Events = s.Events
		if s.End {
			d.TailAfter = s.Last
		} else {
			d.Next, d.Capped = s.Last, len(s.Events) < pageSize
			d.TailAfter, d.Gap = storage.EventsFrom(time.Now()), true
		}
	}
	return h.render(c, status, "events", page{Title: "Events", WS: &ws, Nav: "events", Data: d})
}

// eventsTail is the live tail's poll: the rows of the events after ?after
// that match the page's filter (at most a page; the same bounded read),
// with the cursor of the next poll in the X-Events-Next header and
// X-Events-More: 1 when the read stopped before the newest event.
func (h *Console) eventsTail(c echo.Context) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	f := eventFilter{Type: strings.TrimSpace(c.QueryParam("type")), Actor: strings.TrimSpace(c.QueryParam("actor"))}
	s, err := h.scanEvents(c.Request().Context(), ws.ID, c.QueryParam("after"), f, pageSize)
	if isNotFound(err) {
		return echo.NewHTTPError(http.StatusBadRequest, "unknown event cursor")
	}
	if err != nil {
		return err
	}
	ps, err := loadPages()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := ps["events"].ExecuteTemplate(&buf, "event-rows", eventRows{WS: ws.ID, Events: s.Events}); err != nil {
		return err
	}
	hd := c.Response().Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	// Rows for console.js to insert, never a page of their own.
	hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	hd.Set("X-Events-Next", s.Last)
	if !s.End {
		hd.Set("X-Events-More", "1")
	}
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}
