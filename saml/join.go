package saml

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// beginJoin starts the verification of an existing account that signs in to
// a workspace where it has no verified membership (R8, R9): it stores a
// pending join carrying roles, emails a single-use link to the account's own
// address and renders the "check your email" page. existing is the
// SCIM-created unverified membership, or nil.
//
// Placeholder owned by the join engineer; the SAML ACS calls it.
func (s *Service) beginJoin(c echo.Context, ws storage.Workspace, acct storage.Account, roles storage.Roles, existing *storage.User) error {
	return c.String(http.StatusNotImplemented, "joining another workspace is not available yet")
}
