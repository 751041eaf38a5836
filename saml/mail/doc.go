// Package mail delivers the emails scimjit sends (join links): an SMTP
// transport built on github.com/wneessen/go-mail, the Outbox transport of
// demo mode (no SMTP configured: the store's outbox is the destination;
// the admin API lists it), and Delivery, which records every message in the
// outbox as "queued" and delivers it through a transport from a task on the
// server's durable queue (package storage/queue), recording every attempt
// on the outbox record and ending "sent" or "failed".
//
// A failed delivery is never dropped silently: its outbox record says
// "failed" with the reason, and a warning is logged (without the address).
package mail
