package control

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/dataplane"
)

func vlanSet(vs ...uint16) dataplane.VLANSet {
	var s dataplane.VLANSet
	for _, v := range vs {
		s.Add(v)
	}
	return s
}

func TestParseDesignExample(t *testing.T) {
	cfg, err := Load("testdata/design.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := DefaultConfig()
	want.Bridge = "blue"
	want.MTU = 9000
	want.MACAging = 300 * time.Second
	want.MACTableSize = 8192
	want.Ports = []dataplane.PortConfig{
		{Name: "sw-vlan7", Type: dataplane.PortInternal, Mode: dataplane.ModeAccess, HasTag: true, Tag: 7,
			Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.220/24"), netip.MustParsePrefix("2001:db8:7::dc/64")}},
		{Name: "c0", Type: dataplane.PortInternal, Mode: dataplane.ModeAccess, HasTag: true, Tag: 7, NetNS: "/run/netns/blue-c0"},
		{Name: "tap220", Type: dataplane.PortSystem, Mode: dataplane.ModeTrunk, Trunks: vlanSet(7, 220, 221)},
	}
	want.VXLAN.Enabled = true
	want.VXLAN.Local = netip.MustParseAddr("172.16.220.2")
	want.VXLAN.VNI = map[uint16]uint32{7: 7}
	want.VXLAN.Remotes = []netip.AddrPort{netip.MustParseAddrPort("172.16.221.2:4789")}
	want.Gossip = GossipConfig{
		Enabled: true,
		Bind:    netip.MustParseAddrPort("172.16.220.2:7947"),
		Join:    []string{"172.16.221.2:7947"},
		KeyFile: "/etc/vxswitch/gossip.key",
	}
	want.Metrics.Listen = "127.0.0.1:9470"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestDefaults(t *testing.T) {
	for _, in := range []string{"", "# nothing\n", "{}\n", "---\n"} {
		cfg, err := Parse("empty.yaml", []byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if !reflect.DeepEqual(cfg, DefaultConfig()) {
			t.Errorf("Parse(%q) = %+v, want DefaultConfig() %+v", in, cfg, DefaultConfig())
		}
	}
	d := DefaultConfig()
	got := []any{d.MTU, d.MACAging, d.MACTableSize, d.VXLAN.Port, d.VXLAN.Accept, d.Control.Socket,
		d.Gossip.Bind.Port(), d.Metrics.Listen, d.VXLAN.SrcPortMin, d.VXLAN.SrcPortMax, d.Workers}
	want := []any{1500, 300 * time.Second, 8192, uint16(4789), AcceptAny, "/run/vxswitch/vxswitch.sock",
		uint16(7947), "", uint16(49152), uint16(65535), 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults: got %v, want %v", got, want)
	}
	if DefaultConfig() == DefaultConfig() || &DefaultConfig().Ports == &d.Ports {
		t.Error("DefaultConfig must return a fresh value each time")
	}
}

func TestParseValues(t *testing.T) {
	cfg, err := Parse("v.yaml", []byte(`
bridge: green
mtu: 9000
mac-aging: 60            # bare seconds
workers: 2
busy-poll: 200us
cpus: 3,0-1
ports:
  - {name: up0, type: system, trunks: "7,220-221", vlan-mode: native-tagged, tag: 7, mtu: 1500, mac-limit: 100}
  - {name: c1, type: internal, netns: green-c1, mac: "02:00:5e:10:00:01"}
vxlan:
  local: 2001:db8::2
  trunk-vni: 5000
  remotes: ["2001:db8::3", "[2001:db8::4]:8472"]
  accept: members
  ttl: 32
  df: true
  src-port-range: 1000-2000
gossip:
  bind: :7000
  advertise: 2001:db8::2
  join: [seed.example, "[2001:db8::3]:7001"]
  name: rack2-green
control: {socket: /tmp/x.sock, group: vxswitch}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Bridge, want.MTU, want.MACAging, want.Workers, want.BusyPoll = "green", 9000, time.Minute, 2, 200*time.Microsecond
	want.CPUs = []int{0, 1, 3}
	want.Ports = []dataplane.PortConfig{
		{Name: "up0", Type: dataplane.PortSystem, Mode: dataplane.ModeNativeTagged, ModeSet: true, HasTag: true, Tag: 7,
			Trunks: vlanSet(7, 220, 221), MTU: 1500, MACLimit: 100},
		{Name: "c1", Type: dataplane.PortInternal, Mode: dataplane.ModeTrunk, NetNS: "/run/netns/green-c1",
			MAC: net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}},
	}
	want.VXLAN = VXLANConfig{
		Enabled: true, Local: netip.MustParseAddr("2001:db8::2"), Port: 4789,
		TrunkVNI: 5000, HasTrunkVNI: true,
		Remotes: []netip.AddrPort{netip.MustParseAddrPort("[2001:db8::3]:4789"), netip.MustParseAddrPort("[2001:db8::4]:8472")},
		Accept:  AcceptMembers, TTL: 32, DF: true, SrcPortMin: 1000, SrcPortMax: 2000,
	}
	want.Gossip = GossipConfig{
		Enabled: true, Bind: netip.MustParseAddrPort("0.0.0.0:7000"),
		Advertise: netip.MustParseAddrPort("[2001:db8::2]:7000"),
		Join:      []string{"seed.example:7947", "[2001:db8::3]:7001"},
		Name:      "rack2-green",
	}
	want.Control = ControlConfig{Socket: "/tmp/x.sock", Group: "vxswitch"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
	if vni, ok := cfg.VXLAN.VNIFor(220); !ok || vni != 5000 {
		t.Errorf("VNIFor(220) = %d, %v; want 5000 (trunk VNI)", vni, ok)
	}
}

// errLines splits a joined error into its lines.
func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestParseErrors(t *testing.T) {
	const port = "ports:\n  - name: p0\n    type: internal\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown top-level key", "bridge: x\nbrdge: y\n",
			[]string{`c.yaml:2: brdge: unknown key (want one of bridge, busy-poll, control, cpus, gossip, mac-aging, mac-table-size, metrics, mtu, ports, vxlan, workers)`}},
		{"unknown port key", port + "    vlan: 7\n",
			[]string{`c.yaml:4: ports[0].vlan: unknown key (want one of addresses, mac, mac-limit, mtu, name, netns, tag, trunks, type, vlan-mode)`}},
		{"repeated key", "mtu: 1500\nmtu: 9000\n", []string{`c.yaml:2: mtu: repeated key`}},
		{"tag out of range", port + "    tag: 5000\n", []string{`c.yaml:4: ports[0].tag: VLAN 5000 out of range 0-4094`}},
		{"tag not a number", port + "    tag: seven\n", []string{`c.yaml:4: ports[0].tag: want an integer, got "seven"`}},
		{"trunk item out of range", port + "    trunks: [7, 4095]\n", []string{`c.yaml:4: ports[0].trunks[1]: VLAN 4095 out of range 0-4094`}},
		{"trunk range out of range", port + "    trunks: [220-5000]\n", []string{`c.yaml:4: ports[0].trunks[0]: VLAN 5000 out of range 0-4094`}},
		{"trunk range backwards", port + "    trunks: [221-220]\n", []string{`c.yaml:4: ports[0].trunks[0]: VLAN range "221-220" ends before it starts`}},
		{"trunk string", port + "    trunks: \"7,x\"\n", []string{`c.yaml:4: ports[0].trunks: bad VLAN "x": want a number 0-4094 or a range such as 220-221`}},
		{"vni key out of range", "vxlan:\n  local: 192.0.2.1\n  vni: {5000: 7}\n", []string{`c.yaml:3: vxlan.vni.5000: VLAN 5000 out of range 0-4094`}},
		{"vni value out of range", "vxlan:\n  local: 192.0.2.1\n  vni: {7: 16777216}\n", []string{`c.yaml:3: vxlan.vni.7: VNI 16777216 out of range 0-16777215`}},
		{"trunk-vni out of range", "vxlan:\n  local: 192.0.2.1\n  trunk-vni: -1\n", []string{`c.yaml:3: vxlan.trunk-vni: VNI -1 out of range 0-16777215`}},
		{"vni shared", "vxlan:\n  local: 192.0.2.1\n  vni: {7: 7, 8: 7}\n", []string{`c.yaml:3: vxlan.vni.8: VNI 7 already carries VLAN 7; each VLAN needs its own VNI`}},
		{"vni and trunk-vni", "vxlan:\n  local: 192.0.2.1\n  vni: {7: 7}\n  trunk-vni: 5\n",
			[]string{`c.yaml:4: vxlan.trunk-vni: cannot be combined with vxlan.vni: trunk-vni carries every VLAN, tagged, in one VNI`}},
		{"bad duration", "mac-aging: 5 minutes\n", []string{`c.yaml:1: mac-aging: bad duration "5 minutes": want a number of seconds or a duration such as 300s or 5m`}},
		{"zero duration", "mac-aging: 0s\n", []string{`c.yaml:1: mac-aging: duration "0s" must be positive`}},
		{"bad CIDR", port + "    addresses: [192.0.2.1]\n",
			[]string{`c.yaml:4: ports[0].addresses[0]: bad address "192.0.2.1": want an address with a prefix length, such as 192.0.2.1/24`}},
		{"bad local", "vxlan:\n  local: 300.1.1.1\n", []string{`c.yaml:2: vxlan.local: bad address "300.1.1.1": want the IPv4 or IPv6 address of this host's VTEP`}},
		{"missing local", "vxlan:\n  port: 4789\n", []string{`c.yaml:1: vxlan.local: required: the underlay address of this host's VTEP`}},
		{"bad remote", "vxlan:\n  local: 192.0.2.1\n  remotes: [nope]\n", []string{`c.yaml:3: vxlan.remotes[0]: bad remote VTEP "nope": want a unicast IP address, optionally with :port`}},
		{"remote family", "vxlan:\n  local: 192.0.2.1\n  remotes: ['2001:db8::1']\n",
			[]string{`c.yaml:3: vxlan.remotes[0]: 2001:db8::1 is not in the address family of vxlan.local 192.0.2.1`}},
		{"duplicate port names", port + "  - name: p0\n    type: internal\n", []string{`c.yaml:4: ports[1].name: port "p0" is already defined on line 2`}},
		{"long port name", "ports:\n  - name: abcdefghijklmnop\n    type: internal\n",
			[]string{`c.yaml:2: ports[0].name: port name "abcdefghijklmnop" is 16 bytes; an interface name has at most 15`}},
		{"port named vxlan", "ports:\n  - name: vxlan\n    type: internal\n", []string{`c.yaml:2: ports[0].name: port name "vxlan" is reserved for the tunnel`}},
		{"mtu low", "mtu: 67\n", []string{`c.yaml:1: mtu: MTU 67 out of range 68-65535`}},
		{"port mac", port + "    mac: 01:00:5e:00:00:01\n", []string{`c.yaml:4: ports[0].mac: mac 01:00:5e:00:00:01: a multicast address cannot be an interface's`}},
		{"port mac word", port + "    mac: random\n", []string{`c.yaml:4: ports[0].mac: mac "random": want an Ethernet address such as 02:00:5e:10:00:01`}},
		{"busy-poll bare number", "busy-poll: 50\n", []string{`c.yaml:1: busy-poll: bad duration "50": want 0 (off) or a duration with a unit such as 50us or 20ms`}},
		{"busy-poll negative", "busy-poll: -1ms\n", []string{`c.yaml:1: busy-poll: busy-poll "-1ms": want 0 (off) to 1s`}},
		{"busy-poll too long", "busy-poll: 2s\n", []string{`c.yaml:1: busy-poll: busy-poll "2s": want 0 (off) to 1s`}},
		{"busy-poll word", "busy-poll: on\n", []string{`c.yaml:1: busy-poll: bad duration "on": want 0 (off) or a duration with a unit such as 50us or 20ms`}},
		{"busy-poll list", "busy-poll: [1ms]\n", []string{`c.yaml:1: busy-poll: want a value, got a list`}},
		{"cpus word", "cpus: all\n", []string{`c.yaml:1: cpus: cpus "all": "all" is not a CPU number; want CPU numbers and ranges such as 1, 0-3 or 0,2`}},
		{"cpus backwards", "cpus: 3-1\n", []string{`c.yaml:1: cpus: cpus "3-1": range "3-1" runs backwards; want CPU numbers and ranges such as 1, 0-3 or 0,2`}},
		{"cpus negative", "cpus: -1\n", []string{`c.yaml:1: cpus: cpus "-1": "" is not a CPU number; want CPU numbers and ranges such as 1, 0-3 or 0,2`}},
		{"cpus too big", "cpus: 0-5000\n", []string{`c.yaml:1: cpus: cpus "0-5000": CPU 5000 is above 1023; want CPU numbers and ranges such as 1, 0-3 or 0,2`}},
		{"cpus empty", "cpus: \"\"\n", []string{`c.yaml:1: cpus: cpus "": empty CPU list; want CPU numbers and ranges such as 1, 0-3 or 0,2`}},
		{"cpus trailing comma", "cpus: \"1,\"\n", []string{`c.yaml:1: cpus: cpus "1,": "" is not a CPU number; want CPU numbers and ranges such as 1, 0-3 or 0,2`}},
		{"cpus list", "cpus: [1]\n", []string{`c.yaml:1: cpus: want a value, got a list`}},
		{"workers zero", "bridge: x\nworkers: 0\n", []string{`c.yaml:2: workers: 0 out of range 1-16`}},
		{"workers too many", "workers: 17\n", []string{`c.yaml:1: workers: 17 out of range 1-16`}},
		{"workers negative", "workers: -2\n", []string{`c.yaml:1: workers: -2 out of range 1-16`}},
		{"workers not a number", "workers: two\n", []string{`c.yaml:1: workers: want an integer, got "two"`}},
		{"workers fraction", "workers: 1.5\n", []string{`c.yaml:1: workers: want an integer, got "1.5"`}},
		{"workers empty", "workers:\n", []string{`c.yaml:1: workers: want a value, got nothing`}},
		{"workers list", "workers: [2]\n", []string{`c.yaml:1: workers: want a value, got a list`}},
		{"workers repeated", "workers: 2\nworkers: 2\n", []string{`c.yaml:2: workers: repeated key`}},
		{"workers over source ports", "workers: 4\nvxlan:\n  local: 192.0.2.1\n  src-port-range: 5000-5002\n",
			[]string{`c.yaml:4: vxlan.src-port-range: 3 source ports (5000-5002) cannot give each of 4 workers a send socket of its own`}},
		{"mtu high", port + "    mtu: 65536\n", []string{`c.yaml:4: ports[0].mtu: MTU 65536 out of range 68-65535`}},
		{"accept", "vxlan:\n  local: 192.0.2.1\n  accept: all\n", []string{`c.yaml:3: vxlan.accept: accept "all": want any or members`}},
		{"accept members alone", "vxlan:\n  local: 192.0.2.1\n  accept: members\n",
			[]string{`c.yaml:1: vxlan.accept: members with no remotes and no gossip section would accept nothing`}},
		{"type", "ports:\n  - name: p0\n    type: bridge\n", []string{`c.yaml:3: ports[0].type: type "bridge": want internal or system`}},
		{"type missing", "ports:\n  - name: p0\n", []string{`c.yaml:2: ports[0].type: required (internal or system)`}},
		{"netns on system", "ports:\n  - name: eth1\n    type: system\n    netns: blue\n",
			[]string{`c.yaml:4: ports[0].netns: applies to internal ports only; a system port is an existing interface`}},
		{"addresses on system", "ports:\n  - name: eth1\n    type: system\n    addresses: [192.0.2.1/24]\n",
			[]string{`c.yaml:4: ports[0].addresses: applies to internal ports only; set addresses on the existing interface`}},
		{"mode without tag", port + "    vlan-mode: access\n", []string{`c.yaml:4: ports[0].vlan-mode: port "p0": vlan-mode access needs a tag`}},
		{"bad mode", port + "    vlan-mode: hybrid\n",
			[]string{`c.yaml:4: ports[0].vlan-mode: vlan-mode "hybrid": want one of trunk, access, native-untagged, native-tagged`}},
		{"gossip without vxlan", "gossip:\n  bind: 192.0.2.1\n", []string{`c.yaml:1: gossip: needs a vxlan section: gossip finds the VTEPs of the tunnel`}},
		{"gossip bad join", "vxlan: {local: 192.0.2.1}\ngossip:\n  join: ['a b:1']\n", []string{`c.yaml:3: gossip.join[0]: bad seed "a b:1": want host or host:port`}},
		{"gossip empty name", "vxlan: {local: 192.0.2.1}\ngossip:\n  name: ''\n", []string{`c.yaml:3: gossip.name: name "": want 1-128 characters; leave it out for hostname-bridge`}},
		{"gossip name with a space", "vxlan: {local: 192.0.2.1}\ngossip:\n  name: 'rack 2'\n", []string{`c.yaml:3: gossip.name: name "rack 2": no spaces or control characters`}},
		{"gossip name too long", "vxlan: {local: 192.0.2.1}\ngossip:\n  name: " + strings.Repeat("x", 129) + "\n", []string{`c.yaml:3: gossip.name: name "` + strings.Repeat("x", 129) + `": want 1-128 characters; leave it out for hostname-bridge`}},
		{"metrics listen", "metrics: {listen: localhost}\n", []string{`c.yaml:1: metrics.listen: bad address "localhost": want host:port`}},
		{"not a mapping", "- a\n- b\n", []string{`c.yaml:1: want a mapping of keys, got a list`}},
		{"ports not a list", "ports: {name: x}\n", []string{`c.yaml:1: ports: want a list, got a mapping`}},
		{"yaml syntax", "bridge: [x\n", []string{`c.yaml:1: did not find expected ',' or ']'`}},
		{"several at once", "mtu: 1\nports:\n  - name: a\n    type: internal\n    tag: 5000\n  - name: a\n    type: system\n", []string{
			`c.yaml:1: mtu: MTU 1 out of range 68-65535`,
			`c.yaml:5: ports[0].tag: VLAN 5000 out of range 0-4094`,
			`c.yaml:6: ports[1].name: port "a" is already defined on line 3`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(tt.yaml))
			if got := errLines(err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got  %q\n want %q", got, tt.want)
			}
			if cfg != nil {
				t.Errorf("got a config along with the errors: %+v", cfg)
			}
		})
	}
}

func TestConfigErrorsAreTyped(t *testing.T) {
	_, err := Parse("c.yaml", []byte("mtu: 1\nbridge: [x]\n"))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("%v: not a *ConfigError", err)
	}
	want := ConfigError{File: "c.yaml", Line: 1, Key: "mtu", Msg: "MTU 1 out of range 68-65535"}
	if *ce != want {
		t.Errorf("got %+v, want %+v", *ce, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load: %v, want ErrNotExist", err)
	}
}

func FuzzConfig(f *testing.F) {
	if b, err := os.ReadFile("testdata/design.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("ports:\n  - {name: a, type: internal, tag: 7, trunks: [1-3]}\nvxlan: {local: 10.0.0.1, vni: {7: 7}}\n"))
	f.Add([]byte("a: &x {b: *x}\n"))
	f.Add([]byte("workers: 2\nvxlan: {local: 10.0.0.1, src-port-range: 1000-1001}\n"))
	f.Add([]byte("workers: 0x10\n"))
	f.Add([]byte("workers: !!str 2\n"))
	f.Add([]byte("busy-poll: 50us\nworkers: 2\n"))
	f.Add([]byte("busy-poll: 0\n"))
	f.Add([]byte("cpus: 0-1,3\n"))
	f.Add([]byte("busy-poll: 1h\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data)
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			for _, e := range errLinesTyped(err) {
				var ce *ConfigError
				if !errors.As(e, &ce) || ce.File != "f.yaml" {
					t.Fatalf("error %q is not a *ConfigError naming the file", e)
				}
			}
			return
		}
		// A config that parses is one the agent can start with.
		if cfg.MTU < 68 || cfg.MTU > 65535 || cfg.MACAging <= 0 || cfg.MACTableSize < 1 ||
			cfg.Workers < 1 || cfg.Workers > dataplane.MaxQueues || cfg.BusyPoll < 0 || cfg.BusyPoll > maxBusyPoll {
			t.Fatalf("bad scalar accepted: %+v", cfg)
		}
		names := map[string]bool{}
		for _, pc := range cfg.Ports {
			if err := checkPortName(pc.Name); err != nil || names[pc.Name] {
				t.Fatalf("bad or repeated port name %q accepted", pc.Name)
			}
			names[pc.Name] = true
			if err := pc.Normalize(); err != nil {
				t.Fatalf("port that does not normalise accepted: %v", err)
			}
			if pc.Tag > dataplane.MaxVLAN || pc.Trunks.Has(4095) {
				t.Fatalf("VLAN out of range accepted: %+v", pc)
			}
		}
		v := cfg.VXLAN
		if v.HasTrunkVNI && len(v.VNI) > 0 || v.TrunkVNI > MaxVNI {
			t.Fatalf("bad VNI configuration accepted: %+v", v)
		}
		for vlan, vni := range v.VNI {
			if vlan > dataplane.MaxVLAN || vni > MaxVNI {
				t.Fatalf("VLAN %d -> VNI %d accepted", vlan, vni)
			}
		}
		if v.Enabled && !v.Local.IsValid() {
			t.Fatal("vxlan without local accepted")
		}
		if v.Enabled && int(v.SrcPortMax)-int(v.SrcPortMin)+1 < cfg.Workers {
			t.Fatalf("%d workers accepted with source ports %d-%d", cfg.Workers, v.SrcPortMin, v.SrcPortMax)
		}
	})
}

// errLinesTyped unwraps a joined error into its parts.
func errLinesTyped(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
