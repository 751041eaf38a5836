package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/scimjit/scimjit/server"
)

// AdminPrefix is the path every admin API request starts with; it is the
// server URL of the OpenAPI document.
const AdminPrefix = "/admin/v1"

// Contract checks admin API exchanges against the OpenAPI document the
// server serves (server.OpenAPIDocument) with kin-openapi, which
// validates OpenAPI 3.1 documents with a JSON Schema 2020-12 validator.
type Contract struct {
	doc    *openapi3.T
	router routers.Router
}

// LoadContract parses and validates server.OpenAPIDocument. The result is
// shared: the document is parsed once per test binary.
var LoadContract = sync.OnceValues(func() (*Contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(server.OpenAPIDocument)
	if err != nil {
		return nil, fmt.Errorf("servertest: load openapi document: %w", err)
	}
	return NewContract(doc)
})

// NewContract returns a Contract for doc, after validating the document
// itself. LoadContract is the server's document; tests that prove the
// checks are live pass a changed copy.
func NewContract(doc *openapi3.T) (*Contract, error) {
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("servertest: invalid openapi document: %w", err)
	}
	// The gorilla/mux router, as kin-openapi recommends: it tells an
	// unknown path from a known path with another method, which its legacy
	// router does not always do.
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("servertest: openapi router: %w", err)
	}
	return &Contract{doc: doc, router: router}, nil
}

// Check validates one exchange with the admin API: req as sent (its Body is
// ignored; reqBody is the body) and the response's status, header and
// body. The response must be documented for the operation, with every
// required header and a body that matches its schema. A request the
// server accepted (2xx) must be valid for the document too: the document
// must not forbid what the server does. Requests the server refused are
// not checked against the document, as tests send invalid ones on purpose.
// A request that matches no operation must have got the Error body: 404
// for an unknown path, 405 for a known path whose methods (Allow) are the
// ones the document lists.
func (ct *Contract) Check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	ctx := req.Context()
	// The router matches the server URL ("/admin/v1") against the request
	// URL as a string: give it the path and query only, whether req was
	// sent by a client (absolute URL) or received by the server.
	r := req.Clone(ctx)
	r.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, pathParams, err := ct.router.FindRoute(r)
	if err != nil {
		return ct.checkUnrouted(r, err, status, header, body)
	}
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true, // an undocumented status is a mismatch
		MultiError:            true,
		SkipSettingDefaults:   true,
		AuthenticationFunc:    bearerPresent,
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: pathParams, Route: route, Options: opts}
	if status/100 == 2 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return fmt.Errorf("the server accepted (%d) a request the document does not allow: %w", status, err)
		}
	}
	err = openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	})
	if err != nil {
		return fmt.Errorf("response %d does not match the document: %w", status, err)
	}
	return nil
}

// bearerPresent is the check of the document's bearer security scheme: the
// request carries "Authorization: Bearer <something>". Whether the token
// is right is the server's business; this catches an operation that the
// document marks as public, or as protected, wrongly.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	if s == nil || s.Type != "http" || !strings.EqualFold(s.Scheme, "bearer") {
		return fmt.Errorf("unexpected security scheme %q", in.SecuritySchemeName)
	}
	scheme, tok, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return errors.New("no bearer token")
	}
	return nil
}

// checkUnrouted checks the answer to a request that matches no operation
// of the document (routeErr says why).
func (ct *Contract) checkUnrouted(r *http.Request, routeErr error, status int, header http.Header, body []byte) error {
	var want int
	var code string
	switch {
	case errors.Is(routeErr, routers.ErrPathNotFound):
		want, code = http.StatusNotFound, "not_found"
	case errors.Is(routeErr, routers.ErrMethodNotAllowed):
		want, code = http.StatusMethodNotAllowed, "method_not_allowed"
		if err := ct.checkAllow(r.URL.Path, header.Get("Allow")); err != nil {
			return err
		}
	default:
		return fmt.Errorf("find the operation: %w", routeErr)
	}
	if status != want {
		return fmt.Errorf("the document has no operation %s %s (%v), but the server answered %d, not %d", r.Method, r.URL.Path, routeErr, status, want)
	}
	if r.Method == http.MethodHead {
		return nil
	}
	if mt := header.Get("Content-Type"); !strings.HasPrefix(mt, "application/json") {
		return fmt.Errorf("%d answer with Content-Type %q, want application/json", status, mt)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("%d answer is not JSON: %w", status, err)
	}
	if err := ct.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("%d answer does not match the Error schema: %w", status, err)
	}
	if got := v.(map[string]any)["error"]; got != code {
		return fmt.Errorf("%d answer has error %q, want %q", status, got, code)
	}
	return nil
}

// checkAllow compares a 405's Allow header with the methods the document
// has for path (OPTIONS, which Echo answers on every route, aside).
func (ct *Contract) checkAllow(path, allow string) error {
	rest, _ := strings.CutPrefix(path, AdminPrefix)
	var documented []string
	for tmpl, item := range ct.doc.Paths.Map() {
		if pathMatches(tmpl, rest) {
			for m := range item.Operations() {
				documented = append(documented, strings.ToUpper(m))
			}
		}
	}
	var got []string
	for _, m := range strings.Split(allow, ",") {
		if m = strings.ToUpper(strings.TrimSpace(m)); m != "" && m != http.MethodOptions {
			got = append(got, m)
		}
	}
	slices.Sort(documented)
	slices.Sort(got)
	if !slices.Equal(got, documented) {
		return fmt.Errorf("405 for %s: Allow %q, but the document has the methods %v", path, allow, documented)
	}
	return nil
}

// pathMatches reports whether path fits the document's path template
// ("/workspaces/{ws}").
func pathMatches(tmpl, path string) bool {
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i, t := range ts {
		if !(strings.HasPrefix(t, "{") && ps[i] != "") && t != ps[i] {
			return false
		}
	}
	return true
}

// Reporter receives a mismatch between an exchange and the document. A
// testing.TB's Errorf is one.
type Reporter interface {
	Errorf(format string, args ...any)
}

// ValidateHandler wraps h so that every exchange under AdminPrefix is
// checked with LoadContract's Check after h answered it; a mismatch is
// reported to rep. New installs it in front of the server, so every admin
// API request of a test that uses New is checked, whichever client sends
// it.
//
// kin-openapi's own openapi3filter.Validator middleware does not fit here:
// it answers an invalid request itself (400) instead of passing it on, and
// tests send invalid requests on purpose to check the server's answers.
func ValidateHandler(rep Reporter, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isAdmin(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		var reqBody bytes.Buffer
		if r.Body != nil {
			r.Body = readCloser{io.TeeReader(r.Body, &reqBody), r.Body}
		}
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK // what net/http sends for a handler that writes nothing
		}
		check(rep, r, reqBody.Bytes(), rec.status, w.Header(), rec.body.Bytes())
	})
}

// ValidatingTransport wraps base (http.DefaultTransport when nil) so that
// every exchange under AdminPrefix is checked like ValidateHandler does,
// from the client side: for servers that New did not start.
func ValidatingTransport(rep Reporter, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		if !isAdmin(req.URL.Path) {
			return base.RoundTrip(req)
		}
		var reqBody []byte
		if req.Body != nil {
			var err error
			if reqBody, err = io.ReadAll(req.Body); err != nil {
				return nil, err
			}
			req.Body.Close()
			req = req.Clone(req.Context())
			req.Body = io.NopCloser(bytes.NewReader(reqBody))
		}
		resp, err := base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		check(rep, req, reqBody, resp.StatusCode, resp.Header, body)
		return resp, nil
	})
}

// ValidatingClient is an http.Client with ValidatingTransport, reporting
// to t.
func ValidatingClient(t testing.TB) *http.Client {
	return &http.Client{Transport: ValidatingTransport(t, nil)}
}

func check(rep Reporter, req *http.Request, reqBody []byte, status int, header http.Header, body []byte) {
	ct, err := LoadContract()
	if err == nil {
		err = ct.Check(req, reqBody, status, header, body)
	}
	if err != nil {
		rep.Errorf("admin API contract (docs/openapi.json): %s %s: %v\nresponse body: %.2000s", req.Method, req.URL.Path, err, body)
	}
}

func isAdmin(path string) bool {
	return path == AdminPrefix || strings.HasPrefix(path, AdminPrefix+"/")
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type readCloser struct {
	io.Reader
	io.Closer
}

// recorder passes a response through and keeps its status and body.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(p)
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController (Echo's Flush) reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
