package saml

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server/reqctx"
)

// Server-rendered pages (DESIGN §6): html/template, embedded, one shared
// layout. Every page file templates/<page>.html defines "title" and
// "content"; layout.html wraps them. Files named templates/part_*.html are
// parsed after the page into every page's set, so a part can fill a
// {{block}} a page leaves open (the home page leaves "switcher" for the
// workspace switcher). The join engineer's pages are templates/join_*.html
// and templates/switch_*.html and are rendered the same way:
// s.render(c, status, "join_sent", data).

//go:embed templates/*.html
var templateFS embed.FS

var (
	pagesOnce sync.Once
	pages     map[string]*template.Template
	pagesErr  error
)

// loadPages parses every page of this package with the layout and the parts.
func loadPages() (map[string]*template.Template, error) {
	pagesOnce.Do(func() { pages, pagesErr = ParsePages(templateFS, "templates", templateFuncs) })
	return pages, pagesErr
}

// ParsePages parses the pages of a folder of templates the way this
// package's are (the admin console's too): every <page>.html with
// layout.html, which it fills, and every part_*.html after it; the result
// maps page names (without .html) to their templates.
func ParsePages(fsys fs.FS, dir string, funcs template.FuncMap) (map[string]*template.Template, error) {
	names, err := fs.Glob(fsys, dir+"/*.html")
	if err != nil {
		return nil, err
	}
	var parts []string
	for _, n := range names {
		if strings.HasPrefix(path.Base(n), "part_") {
			parts = append(parts, n)
		}
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" || strings.HasPrefix(base, "part_") {
			continue
		}
		files := append([]string{dir + "/layout.html", n}, parts...)
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(fsys, files...)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		out[strings.TrimSuffix(base, ".html")] = t
	}
	return out, nil
}

var templateFuncs = template.FuncMap{}

// render writes page (a templates/<page>.html name without extension) with
// data and status (WritePage). Templates get data as "."; a missing page
// is a programming error and answers 500.
func (s *Service) render(c echo.Context, status int, page string, data any) error {
	ps, err := loadPages()
	if err != nil {
		return fmt.Errorf("load templates: %w", err)
	}
	return WritePage(c, status, ps, page, data)
}

// WritePage executes page of pages with data and writes it with status,
// as text/html with headers that keep it out of caches and frames and let
// in only the product's own stylesheet and script.
func WritePage(c echo.Context, status int, pages map[string]*template.Template, page string, data any) error {
	t, ok := pages[page]
	if !ok {
		return fmt.Errorf("render: unknown page %q", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", data); err != nil {
		return fmt.Errorf("render %s: %w", page, err)
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	// same-origin, not no-referrer: with no-referrer Chromium sends
	// "Origin: null" on the page's form POSTs, which checkCSRF refuses.
	h.Set("Referrer-Policy", "same-origin")
	return c.HTMLBlob(status, buf.Bytes())
}

// message is the data of the simple message pages (message.html).
type message struct {
	Title string
	Text  string
	// Detail is an optional second paragraph.
	Detail string
	// Link / LinkText add a link under the text.
	Link, LinkText string
	// Home adds a link to the start page.
	Home bool
}

// showMessage renders a short message page.
func (s *Service) showMessage(c echo.Context, status int, m message) error {
	return s.render(c, status, "message", m)
}

// forbidden renders the plain 403 page for a refused form post (bad CSRF).
func (s *Service) forbidden(c echo.Context) error {
	return s.showMessage(c, http.StatusForbidden, message{Title: "Request refused",
		Text: "This form has expired or did not come from this site. Go back, reload the page and try again."})
}

// ErrorPage renders the page of a browser request that failed outside the
// pages of this package: no such page (404), a method the route does not
// take (405), a body over the limit (413), the store unreachable (503) or
// an internal error (500; other statuses get their status text). It never
// shows the error itself. The way forward is the start page and, when ws
// names the workspace the request was about, signing in to it again; for
// a 5xx it shows the request id so that a person can quote it.
func (s *Service) ErrorPage(c echo.Context, status int, ws string) error {
	m := message{Home: true}
	switch status {
	case http.StatusNotFound:
		m.Title, m.Text = "Page not found", "There is no page at this address."
	case http.StatusMethodNotAllowed:
		m.Title, m.Text = "Page not found", "This page cannot be used this way. Start again from the start page."
	case http.StatusRequestEntityTooLarge:
		m.Title, m.Text = "Request too large", "What you sent is larger than this page accepts."
	case http.StatusServiceUnavailable:
		m.Title, m.Text = "Try again in a moment", "Sign-in is briefly unavailable. Please try again in a moment; nothing you did is lost."
	case http.StatusInternalServerError:
		m.Title, m.Text = "Something went wrong", "We could not complete this request. Please try again; if it keeps happening, contact your administrator."
	default:
		m.Title, m.Text = http.StatusText(status), "We could not complete this request."
	}
	if status >= 500 {
		if id := reqctx.RequestID(c.Request().Context()); id != "" {
			m.Detail = "Reference: " + id
		}
	}
	if wsPattern.MatchString(ws) {
		m.Link, m.LinkText = "/saml/"+ws+"/login", "Sign in again"
	}
	return s.showMessage(c, status, m)
}
