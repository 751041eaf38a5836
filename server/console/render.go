package console

import (
	"embed"
	"fmt"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

var (
	pagesOnce sync.Once
	pages     map[string]*template.Template
	pagesErr  error
)

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"roles": func(ws storage.Workspace) []string {
		return append(append([]string{}, storage.SystemRoles...), ws.Settings.CustomRoles...)
	},
	// ms writes a duration in milliseconds.
	"ms": func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
	},
	"add":   func(a, b int) int { return a + b },
	"envs":  func() []string { return storage.Environments[:] },
	"upper": strings.ToUpper,
	"envRole": func(r storage.Roles, env string) string {
		return map[string]string{"dev": r.Dev, "test": r.Test, "prod": r.Prod}[env]
	},
	"reason": reasonText,
	// detail writes an event's detail as "k: v · k: v", without the
	// keys in omit (shown elsewhere on the page).
	"detail": func(d map[string]string, omit ...string) string {
		keys := make([]string, 0, len(d))
		for k := range d {
			if !slices.Contains(omit, k) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		var b strings.Builder
		for i, k := range keys {
			if i > 0 {
				b.WriteString(" · ")
			}
			b.WriteString(k + ": " + d[k])
		}
		return b.String()
	},
	// ruleRole is the role the rule form shows for an environment.
	"ruleRole": func(d authData, env string) string {
		return map[string]string{"dev": d.Rule.Dev, "test": d.Rule.Test, "prod": d.Rule.Prod}[env]
	},
}

func loadPages() (map[string]*template.Template, error) {
	pagesOnce.Do(func() { pages, pagesErr = saml.ParsePages(templateFS, "templates", funcs) })
	return pages, pagesErr
}

// page is what every console template gets.
type page struct {
	Title string
	Who   who
	// WS is the workspace the page is about (nil on the operator pages);
	// Nav names the side navigation's current entry.
	WS   *storage.Workspace
	Nav  string
	CSRF string
	// Flash is a confirmation shown on top of the page.
	Flash string
	Data  any
}

// render writes a console page (saml.WritePage: the headers of every
// page of the product).
func (h *Console) render(c echo.Context, status int, name string, p page) error {
	ps, err := loadPages()
	if err != nil {
		return err
	}
	if p.Who.Actor == "" {
		p.Who = whoOf(c)
	}
	if p.CSRF == "" {
		if p.CSRF, err = h.cfg.SAML.CSRFToken(c); err != nil {
			return err
		}
	}
	return saml.WritePage(c, status, ps, name, p)
}

// reasonText says in words why a member has a role (RoleReason.Source is
// the admin API's explain source).
func reasonText(r RoleReason) string {
	var s string
	switch r.Source {
	case "attribute":
		s = "sent by the identity provider at sign-in"
	case "rule":
		s = fmt.Sprintf("group rule %d (group %q)", r.Rule, r.Group)
	case "default":
		s = "the default role: the sign-in sent none"
	case "kept":
		s = "kept: the sign-in's groups were not known"
	case "join":
		s = "from the sign-in behind a confirmed join link"
	case "saml":
		s = "set at a sign-in"
	case "scim":
		return "set by your identity provider through SCIM"
	case "console":
		s = "set by an admin in this console"
	default:
		return "not known: no event kept explains it"
	}
	if !r.Time.IsZero() {
		s += ", " + r.Time.UTC().Format("2006-01-02 15:04 UTC")
	}
	return s
}
