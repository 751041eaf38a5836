// Package webhookstest is what tests of webhook delivery share: a
// Standard Webhooks verifier and signer written from the specification,
// independent of the library scimjit signs with (Verify, Sign); a receiver
// test server that verifies every request with it (Receiver); and the
// validation of payloads against the webhook schemas of the OpenAPI
// document (Schemas).
package webhookstest
