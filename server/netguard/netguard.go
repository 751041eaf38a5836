// Package netguard keeps outbound HTTP requests that scimjit makes on an
// administrator's behalf (IdP metadata downloads, webhook deliveries) away
// from internal networks: unless allowed, a connection to a loopback,
// private, link-local or other non-public address is refused. The check
// runs on the address actually dialled, after DNS resolution
// (net.Dialer.Control), so a name that resolves to an internal address, a
// DNS answer that changes between look-ups (rebinding) or a redirect to an
// internal host are refused too.
package netguard

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Direct makes tr connect directly (never through a proxy from the
// environment) with dial attempts bounded by dialTimeout, through a dialer
// that, unless allowPrivate, refuses every non-public address with a
// *RefusedError.
func Direct(tr *http.Transport, dialTimeout time.Duration, allowPrivate bool) {
	d := &net.Dialer{Timeout: dialTimeout}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("netguard: unexpected address %q", address)
			}
			if kind := NonPublicKind(ap.Addr()); kind != "" {
				return &RefusedError{Kind: kind}
			}
			return nil
		}
	}
	tr.Proxy = nil
	tr.DialContext = d.DialContext
}

// RefusedError is a refused connection to a non-public address.
type RefusedError struct {
	// Kind names the address's kind (NonPublicKind).
	Kind string
}

func (e *RefusedError) Error() string {
	return "refused to connect to a " + e.Kind + " address"
}

// Special-purpose IPv4 ranges (RFC 6890) that are not public but that
// netip has no predicate for.
var nonPublicV4 = []struct {
	prefix netip.Prefix
	kind   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

// nat64 is the well-known NAT64 prefix (RFC 6052): its addresses reach the
// IPv4 address in their last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// NonPublicKind names the kind of a non-public address (loopback, private,
// link-local, unspecified, multicast and the other special-purpose
// ranges), or returns "" for a public one. IPv4-mapped and NAT64
// addresses are judged by the IPv4 address they carry.
func NonPublicKind(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	}
	if a.Is4() {
		if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return "broadcast"
		}
		for _, r := range nonPublicV4 {
			if r.prefix.Contains(a) {
				return r.kind
			}
		}
	}
	return ""
}
