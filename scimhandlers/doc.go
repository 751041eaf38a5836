// Package scimhandlers serves SCIM 2.0 (RFC 7643/7644) per workspace under
// /scim/v2/{workspace}: bearer-token authentication, Users and Groups on top
// of elimity-com/scim, filter evaluation and index planning, PATCH
// application, sorting, paging, attribute projection, ETags, and the mapping
// of every storage error to an RFC 7644 §3.12 error body.
package scimhandlers
