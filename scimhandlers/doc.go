// Package scimhandlers serves SCIM 2.0 (RFC 7643/7644) per workspace under
// /scim/v2/{workspace}: bearer-token authentication, Users and Groups on top
// of elimity-com/scim, filter evaluation and index planning, PATCH
// application, sorting, paging, attribute projection, ETags, and the mapping
// of every storage error to an RFC 7644 §3.12 error body.
//
// Layout:
//   - handler.go: New, Register (the endpoint table on the server's Echo
//     router), authentication, discovery endpoints
//   - schemas.go: schemas (incl. Workato's role extension), ResourceTypes, ServiceProviderConfig
//   - users.go, groups.go: resource handlers and the storage mapping
//   - query.go: list, .search, root queries, paging, projection
//   - results.go: the page a filtered or sorted query keeps while it scans,
//     and sorting
//   - filter.go: filter validation, evaluation and index planning
//   - patch.go: PATCH parsing (through the library) and application
//   - body.go: reading request bodies, refusing duplicate keys, decoding
//   - errors.go: the SCIM error type, its one writer (WriteError) and the
//     storage-error mapping
//   - limits.go: the limits of one request, and the guard every filter, PATCH
//     path and attribute name passes before a parser sees it
//
// docs/scim.md describes the behaviour for operators and IdP admins.
package scimhandlers
