package overlay

import (
	"bytes"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func TestConfigDefaults(t *testing.T) {
	c, err := Config{Local: lo1}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultConfig()
	if c.Port != 4789 || c.SrcPortMin != 49152 || c.SrcPortMax != 65535 || c.SendSockets != 16 ||
		c.Accept != AcceptAny || c.BatchSize != d.BatchSize || c.Logger == nil {
		t.Errorf("defaults = %+v", c)
	}
	if c, _ := (Config{Local: lo1, SrcPortMin: 5000, SrcPortMax: 5003}).withDefaults(); c.SendSockets != 4 {
		t.Errorf("SendSockets over a 4-port range = %d, want 4", c.SendSockets)
	}
	bad := []struct {
		name string
		cfg  Config
	}{
		{"no local", Config{}},
		{"reversed range", Config{Local: lo1, SrcPortMin: 6000, SrcPortMax: 5000}},
		{"ttl", Config{Local: lo1, TTL: 256}},
		{"accept", Config{Local: lo1, Accept: "some"}},
		{"vni", Config{Local: lo1, VNIs: []uint32{1 << 24}}},
		{"remote family", Config{Local: lo1, Remotes: []netip.Addr{netip.MustParseAddr("::1")}}},
		{"negative sockets", Config{Local: lo1, SendSockets: -1}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.cfg.withDefaults(); err == nil {
				t.Errorf("%+v accepted", tt.cfg)
			} else if _, err := Listen(tt.cfg); err == nil {
				t.Errorf("Listen(%+v) succeeded", tt.cfg)
			}
		})
	}
}

func TestCheckUnderlayMTU(t *testing.T) {
	// lo holds 127.0.0.1 with MTU 65536.
	if w, err := CheckUnderlayMTU(lo1, 9000, true); err != nil || w != "" {
		t.Errorf("lo for 9000 = %q, %v; want no warning", w, err)
	}
	w, err := CheckUnderlayMTU(lo1, 65500, false)
	if err != nil || w == "" {
		t.Fatalf("lo for 65500 = %q, %v; want a warning", w, err)
	}
	for _, s := range []string{"65536", "65500", "65550"} {
		if !bytes.Contains([]byte(w), []byte(s)) {
			t.Errorf("warning %q does not name %s", w, s)
		}
	}
	if _, err := CheckUnderlayMTU(netip.MustParseAddr("203.0.113.77"), 1500, false); err == nil {
		t.Error("no error for an address no interface holds")
	}
	tests := []struct {
		name   string
		mtu    int
		local  string
		port   int
		tagged bool
		want   string
	}{
		{"v4 fits", 1550, "10.0.0.1", 1500, false, ""},
		{"v4 short", 1500, "10.0.0.1", 1500, false, "underlay interface eth0 (10.0.0.1) has MTU 1500, but frames from ports with MTU 1500 need 1550 (50 bytes of VXLAN over IPv4); larger frames will be dropped or fragmented: raise the underlay MTU to 1550 or lower the port MTU to 1450"},
		{"v6 tagged", 9000, "2001:db8::1", 9000, true, "underlay interface eth0 (2001:db8::1) has MTU 9000, but frames from ports with MTU 9000 need 9074 (74 bytes of VXLAN over IPv6 with an 802.1Q tag); larger frames will be dropped or fragmented: raise the underlay MTU to 9074 or lower the port MTU to 8926"},
		{"v6 fits exactly", 1570, "2001:db8::1", 1500, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mtuWarning("eth0", tt.mtu, netip.MustParseAddr(tt.local), tt.port, tt.tagged); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestSendOptions reads TTL and DF back from the send sockets.
func TestSendOptions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		local    string
		ttl      int
		df       bool
		wantTTL  int
		wantPMTU int
	}{
		{"IPv4 TTL 7 DF", "127.0.0.1", 7, true, 7, unix.IP_PMTUDISC_DO},
		{"IPv4 default", "127.0.0.1", 0, false, -1, unix.IP_PMTUDISC_DONT},
		{"IPv6 hops 9 DF", "::1", 9, true, 9, unix.IPV6_PMTUDISC_DO},
		{"IPv6 default", "::1", 0, false, -1, unix.IPV6_PMTUDISC_DONT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := listenEndpoints(t, func(_ int, c *Config) { c.TTL, c.DF, c.SendSockets = tc.ttl, tc.df, 2 }, tc.local)[0]
			for _, s := range e.sys.tx {
				var ttl, pmtu int
				var err1, err2 error
				_ = s.rc.Control(func(fd uintptr) {
					if e.cfg.Local.Is4() {
						ttl, err1 = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL)
						pmtu, err2 = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER)
					} else {
						ttl, err1 = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS)
						pmtu, err2 = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER)
					}
				})
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if tc.wantTTL > 0 && ttl != tc.wantTTL {
					t.Errorf("port %d: TTL %d, want %d", s.port, ttl, tc.wantTTL)
				}
				if pmtu != tc.wantPMTU {
					t.Errorf("port %d: PMTU discovery %d, want %d", s.port, pmtu, tc.wantPMTU)
				}
			}
		})
	}
}
