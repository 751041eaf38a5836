package netguard

import (
	"net/netip"
	"testing"
)

func TestNonPublicKind(t *testing.T) {
	cases := map[string]string{
		"127.0.0.1":            "loopback",
		"127.9.9.9":            "loopback",
		"::1":                  "loopback",
		"::ffff:127.0.0.1":     "loopback",
		"64:ff9b::7f00:1":      "loopback", // NAT64 of 127.0.0.1
		"10.1.2.3":             "private",
		"172.16.0.1":           "private",
		"192.168.1.1":          "private",
		"fd00:ec2::254":        "private", // a cloud metadata address
		"169.254.169.254":      "link-local",
		"fe80::1":              "link-local",
		"0.0.0.0":              "unspecified",
		"::":                   "unspecified",
		"224.0.0.1":            "link-local", // link-local multicast
		"239.1.2.3":            "multicast",
		"ff02::1":              "link-local",
		"ff05::1":              "multicast",
		"100.64.0.1":           "shared (carrier-grade NAT)",
		"0.1.2.3":              "this-network",
		"198.18.0.1":           "benchmarking",
		"240.0.0.1":            "reserved",
		"255.255.255.255":      "broadcast",
		"8.8.8.8":              "",
		"93.184.216.34":        "",
		"2001:4860:4860::8888": "",
		"64:ff9b::808:808":     "", // NAT64 of 8.8.8.8
		"::ffff:8.8.8.8":       "",
	}
	for addr, want := range cases {
		if got := NonPublicKind(netip.MustParseAddr(addr)); got != want {
			t.Errorf("NonPublicKind(%s) = %q, want %q", addr, got, want)
		}
	}
}
