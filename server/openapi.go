package server

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// OpenAPIDocument is the OpenAPI 3.1 document of the admin API
// (/admin/v1), served at /admin/v1/openapi.json. docs/openapi.json is a
// copy of it, kept identical by a test.
//
//go:generate cp openapi.json ../docs/openapi.json
//go:embed openapi.json
var OpenAPIDocument []byte

// openAPIDocument serves OpenAPIDocument. It needs no admin token: the
// document is the API's public contract and holds nothing secret.
func (s *Server) openAPIDocument(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, OpenAPIDocument)
}
