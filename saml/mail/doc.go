// Package mail delivers the emails scimjit sends (the join links of R8):
// an SMTP transport built on github.com/wneessen/go-mail, an outbox sender
// that only records messages in the store (demo mode, no SMTP configured;
// the admin API lists the outbox), and a delivering wrapper that records
// every message in the outbox as "queued" and then delivers it over SMTP in
// the background with bounded retries, recording "sent" or "failed".
//
// A failed delivery is never dropped silently: its outbox record says
// "failed" with the reason, and a warning is logged (without the address).
package mail
