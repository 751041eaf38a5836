package saml

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	crewjam "github.com/crewjam/saml"
	"github.com/labstack/echo/v4"
)

// What a sign-in received, for the admin's sign-in debugger: the
// attributes as the IdP sent them (names and values, nothing else of the
// assertion: no signature, no conditions, no NameID format) and, for each
// attribute scimjit reads, which spelling of its name matched. It is
// recorded with the sign-in's decision event (login.succeeded,
// login.refused, join.pending) under the detail keys below, bounded so that
// a hostile IdP cannot make the event large.

// Detail keys of the received attributes.
const (
	// DetailAttributes is a JSON array of ReceivedAttribute.
	DetailAttributes = "attributes"
	// DetailAttributesOmitted counts the attributes and values left out
	// by the bounds (absent when none were).
	DetailAttributesOmitted = "attributes.omitted"
	// DetailNameID is the assertion's NameID value (bounded like a value).
	DetailNameID = "nameID"
)

// Bounds of the record.
const (
	maxReceivedAttributes = 40
	maxReceivedValues     = 10
	maxReceivedLen        = 200  // bytes of a name or a value
	maxReceivedTotal      = 6000 // bytes of names and values together
)

// ReceivedAttribute is one attribute a sign-in received.
type ReceivedAttribute struct {
	// Name as sent (the FriendlyName in parentheses when there is one).
	Name   string   `json:"name"`
	Values []string `json:"values"`
	// Reads is the attribute scimjit read from it (workato_email,
	// workato_full_name, workato_role, workato_role_test,
	// workato_role_prod); empty when none.
	Reads string `json:"reads,omitempty"`
	// Spelling says how Name matched Reads: "plain", "appuser. prefix",
	// "user. prefix", "claim URI" (the final segment of a URI or URN, as
	// Entra sends claims), combinations of these, or "FriendlyName".
	Spelling string `json:"spelling,omitempty"`
}

// readAttributes are the attributes whose spelling the record names.
var readAttributes = []string{attrEmail, attrFullName, attrRoleDev, attrRoleTest, attrRoleProd}

// receivedKey is the Echo context key of a sign-in's record (received).
const receivedKey = "saml.received"

// noteReceived records what the validated assertion a carried, for the
// sign-in's decision event (withReceived).
func noteReceived(c echo.Context, a *crewjam.Assertion) {
	c.Set(receivedKey, received(a))
}

// withReceived adds the record noteReceived made for this request to an
// event's detail (nothing before an assertion was validated).
func withReceived(c echo.Context, detail map[string]string) map[string]string {
	rec, _ := c.Get(receivedKey).(map[string]string)
	if len(rec) == 0 {
		return detail
	}
	if detail == nil {
		detail = map[string]string{}
	}
	for k, v := range rec {
		detail[k] = v
	}
	return detail
}

// received is the bounded record of a's attributes as event detail.
func received(a *crewjam.Assertion) map[string]string {
	av := collectAttributes(a)
	reads := map[int]attrSource{}
	readsName := map[int]string{}
	for _, k := range readAttributes {
		if src, ok := av.from[k]; ok {
			reads[src.index], readsName[src.index] = src, k
		}
	}
	var out []ReceivedAttribute
	omitted, total, index := 0, 0, 0
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			i := index
			index++
			name := bounded(at.Name)
			if at.FriendlyName != "" {
				name += " (" + bounded(at.FriendlyName) + ")"
			}
			if len(out) == maxReceivedAttributes || total+len(name) > maxReceivedTotal {
				omitted++
				continue
			}
			total += len(name)
			r := ReceivedAttribute{Name: name, Values: []string{}}
			for j, v := range at.Values {
				v := bounded(v.Value)
				if j == maxReceivedValues || total+len(v) > maxReceivedTotal {
					omitted += len(at.Values) - j
					break
				}
				total += len(v)
				r.Values = append(r.Values, v)
			}
			if src, ok := reads[i]; ok {
				r.Reads = readsName[i]
				r.Spelling = spelling(at.Name, src.friendly)
			}
			out = append(out, r)
		}
	}
	d := map[string]string{}
	if b, err := json.Marshal(out); err == nil && len(out) > 0 {
		d[DetailAttributes] = string(b)
	}
	if omitted > 0 {
		d[DetailAttributesOmitted] = strconv.Itoa(omitted)
	}
	if a.Subject != nil && a.Subject.NameID != nil && a.Subject.NameID.Value != "" {
		d[DetailNameID] = bounded(strings.TrimSpace(a.Subject.NameID.Value))
	}
	return d
}

// spelling names how an attribute's Name (or its FriendlyName) matched
// the name scimjit reads (attrName).
func spelling(name string, friendly bool) string {
	if friendly {
		return "FriendlyName"
	}
	var parts []string
	if i := strings.LastIndexAny(name, "/#:"); i >= 0 {
		parts = append(parts, "claim URI")
		name = name[i+1:]
	}
	low := strings.ToLower(strings.TrimSpace(name))
	switch {
	case strings.HasPrefix(low, "appuser."):
		parts = append(parts, "appuser. prefix")
	case strings.HasPrefix(low, "user."):
		parts = append(parts, "user. prefix")
	case len(parts) == 0:
		parts = append(parts, "plain")
	}
	return strings.Join(parts, ", ")
}

// bounded cuts s to maxReceivedLen bytes on a rune boundary, marking the
// cut with "…".
func bounded(s string) string {
	if len(s) <= maxReceivedLen {
		return s
	}
	cut := maxReceivedLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// ReceivedAttributes reads the attributes recorded in an event's detail;
// nil when there are none (or they cannot be read).
func ReceivedAttributes(detail map[string]string) []ReceivedAttribute {
	var out []ReceivedAttribute
	if err := json.Unmarshal([]byte(detail[DetailAttributes]), &out); err != nil {
		return nil
	}
	return out
}
