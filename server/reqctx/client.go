package reqctx

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
)

// ClientKey is the rate-limit bucket of a client IP (echo.Context.RealIP:
// the TCP peer, or the X-Forwarded-For entry chosen by the trusted
// proxies): an IPv4 address (IPv4-mapped IPv6 counts as IPv4), or for
// IPv6 its /64, since one host usually holds a whole /64 and could
// otherwise rotate addresses past a limit. It is hashed (hex SHA-256) so
// that a rate-limit key has a fixed shape and keeps no address in the
// store. Anything that is not an IP shares the one bucket "invalid", so
// that odd input cannot mint fresh buckets.
func ClientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "invalid"
	}
	a = a.Unmap().WithZone("")
	bucket := a.String()
	if a.Is6() {
		p, _ := a.Prefix(64) // cannot fail: 64 bits fit an IPv6 address
		bucket = p.String()
	}
	sum := sha256.Sum256([]byte(bucket))
	return hex.EncodeToString(sum[:])
}
