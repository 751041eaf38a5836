// Package mailtest runs a real SMTP server (github.com/emersion/go-smtp) on
// a loopback port for tests: it accepts or refuses messages on demand,
// optionally over STARTTLS or implicit TLS with a certificate made for the
// test and with AUTH PLAIN, and hands every accepted message to the test
// decoded (subject, text and HTML parts).
package mailtest
