package dataplane_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/dataplane/porttest"
	"github.com/vxswitch/vxswitch/fdb"
)

var (
	macA = fdb.MAC{0x02, 0, 0, 0, 0, 0xa}
	macB = fdb.MAC{0x02, 0, 0, 0, 0, 0xb}
	macC = fdb.MAC{0x02, 0, 0, 0, 0, 0xc}
	macR = fdb.MAC{0x02, 0, 0, 0, 0, 0xe} // behind the tunnel
)

// eth builds an Ethernet frame with an optional 802.1Q tag (vlan >= 0)
// and an L2 payload of n bytes.
func eth(dst, src fdb.MAC, vlan int, n int) []byte {
	f := append([]byte{}, dst[:]...)
	f = append(f, src[:]...)
	if vlan >= 0 {
		f = binary.BigEndian.AppendUint16(f, 0x8100)
		f = binary.BigEndian.AppendUint16(f, uint16(vlan))
	}
	f = binary.BigEndian.AppendUint16(f, 0x0800)
	for i := 0; i < n; i++ {
		f = append(f, byte(i))
	}
	return f
}

// tagOf decodes a frame with gopacket and returns its 802.1Q VLAN, or -1.
func tagOf(t *testing.T, f []byte) int {
	t.Helper()
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if l := p.Layer(layers.LayerTypeDot1Q); l != nil {
		return int(l.(*layers.Dot1Q).VLANIdentifier)
	}
	return -1
}

type testSwitch struct {
	sw    *dataplane.Switch
	ports map[string]*porttest.Port
	tun   *porttest.Tunnel
}

func access(name string, tag uint16) dataplane.PortConfig {
	return dataplane.PortConfig{Name: name, Type: dataplane.PortSystem, HasTag: true, Tag: tag}
}

func trunk(name string, vlans ...uint16) dataplane.PortConfig {
	pc := dataplane.PortConfig{Name: name, Type: dataplane.PortSystem}
	for _, v := range vlans {
		pc.Trunks.Add(v)
	}
	return pc
}

func newTestSwitch(t *testing.T, pcs ...dataplane.PortConfig) *testSwitch {
	t.Helper()
	ts := &testSwitch{ports: map[string]*porttest.Port{}}
	ts.sw = dataplane.New(dataplane.Config{
		Bridge: "test",
		FDB:    fdb.New(fdb.Config{}),
		Open: func(pc dataplane.PortConfig) (dataplane.Port, error) {
			p := porttest.New()
			ts.ports[pc.Name] = p
			return p, nil
		},
	})
	t.Cleanup(func() { ts.sw.Close() })
	for _, pc := range pcs {
		if _, err := ts.sw.AddPort(pc); err != nil {
			t.Fatal(err)
		}
	}
	return ts
}

func (ts *testSwitch) withTunnel(t *testing.T, tc dataplane.TunnelConfig) {
	t.Helper()
	ts.tun = porttest.NewTunnel()
	if err := ts.sw.SetTunnel(ts.tun, tc); err != nil {
		t.Fatal(err)
	}
}

func (ts *testSwitch) counters(t *testing.T, name string) dataplane.PortCounters {
	t.Helper()
	return portCounters(t, ts.sw, name)
}

// portCounters returns the counters of sw's port name, or of its tunnel
// (dataplane.TunnelName).
func portCounters(t *testing.T, sw *dataplane.Switch, name string) dataplane.PortCounters {
	t.Helper()
	if name == dataplane.TunnelName {
		c, _ := sw.TunnelStats()
		return c
	}
	for _, p := range sw.Ports() {
		if p.Config.Name == name {
			return p.Counters
		}
	}
	t.Fatalf("no port %q", name)
	return dataplane.PortCounters{}
}

// send injects frames on a port and waits until the switch has finished
// forwarding them (its rx counter is updated after the writes).
func (ts *testSwitch) send(t *testing.T, name string, frames ...[]byte) {
	t.Helper()
	want := ts.counters(t, name).RxPackets + uint64(len(frames))
	ts.ports[name].Inject(frames...)
	waitFor(t, func() bool { return ts.counters(t, name).RxPackets >= want })
}

func (ts *testSwitch) sendTunnel(t *testing.T, f []byte, vni uint32, vtep netip.Addr) {
	t.Helper()
	want := ts.counters(t, dataplane.TunnelName).RxPackets + 1
	ts.tun.Inject(f, vni, vtep)
	waitFor(t, func() bool { return ts.counters(t, dataplane.TunnelName).RxPackets >= want })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(time.Millisecond)
	}
}

// got returns the frames a port was sent so far (the switch has finished
// with everything send waited for).
func (ts *testSwitch) got(name string) [][]byte {
	var out [][]byte
	for {
		select {
		case f := <-ts.ports[name].Written:
			out = append(out, f)
		default:
			return out
		}
	}
}

func (ts *testSwitch) gotTunnel() []porttest.Sent {
	var out []porttest.Sent
	for {
		select {
		case s := <-ts.tun.Written:
			out = append(out, s)
		default:
			return out
		}
	}
}

func TestAccessFloodLearnUnicast(t *testing.T) {
	ts := newTestSwitch(t, access("a", 7), access("b", 7), access("c", 7), access("d", 8))
	bcast := eth(fdb.Broadcast, macA, -1, 46)
	ts.send(t, "a", bcast)
	for _, name := range []string{"b", "c"} {
		g := ts.got(name)
		if len(g) != 1 || string(g[0]) != string(bcast) {
			t.Errorf("port %s got %d frames, want the broadcast untagged", name, len(g))
		}
	}
	if g := ts.got("a"); len(g) != 0 {
		t.Errorf("flood went back to the ingress port: %d frames", len(g))
	}
	if g := ts.got("d"); len(g) != 0 {
		t.Errorf("VLAN 7 frame leaked to VLAN 8 port: %d frames", len(g))
	}
	// b answers a: known unicast goes to a only.
	uni := eth(macA, macB, -1, 46)
	ts.send(t, "b", uni)
	if g := ts.got("a"); len(g) != 1 {
		t.Errorf("port a got %d frames, want 1", len(g))
	}
	for _, name := range []string{"c", "d"} {
		if g := ts.got(name); len(g) != 0 {
			t.Errorf("known unicast flooded to %s", name)
		}
	}
	ida, _ := ts.sw.PortByName("a")
	if d, ok := ts.sw.FDB().Lookup(fdb.Key{VLAN: 7, MAC: macA}); !ok || d.Port != ida {
		t.Errorf("FDB has %v %v for a's MAC, want port %d", d, ok, ida)
	}
	if _, ok := ts.sw.FDB().Lookup(fdb.Key{VLAN: 8, MAC: macA}); ok {
		t.Error("a's MAC learned in VLAN 8")
	}
}

func TestTrunkTagging(t *testing.T) {
	ts := newTestSwitch(t, access("a", 7), trunk("t", 7, 9))
	// Access -> trunk: tagged with 7.
	ts.send(t, "a", eth(fdb.Broadcast, macA, -1, 46))
	g := ts.got("t")
	if len(g) != 1 || tagOf(t, g[0]) != 7 {
		t.Fatalf("trunk got %d frames (tag %v), want one tagged 7", len(g), g)
	}
	// Trunk VLAN 7 -> access: untagged.
	ts.send(t, "t", eth(macA, macB, 7, 46))
	g = ts.got("a")
	if len(g) != 1 || tagOf(t, g[0]) != -1 || string(g[0]) != string(eth(macA, macB, -1, 46)) {
		t.Fatalf("access port got %x, want the frame untagged", g)
	}
	// VLAN 8 is not in trunks, and untagged (VLAN 0) is not either.
	before := ts.counters(t, "t").Drops["vlan_not_allowed"]
	ts.send(t, "t", eth(fdb.Broadcast, macB, 8, 46), eth(fdb.Broadcast, macB, -1, 46))
	if n := ts.counters(t, "t").Drops["vlan_not_allowed"] - before; n != 2 {
		t.Errorf("vlan_not_allowed drops = %d, want 2", n)
	}
	if g := ts.got("a"); len(g) != 0 {
		t.Errorf("disallowed VLAN reached access port")
	}
}

func TestMixedFloodForms(t *testing.T) {
	nu := dataplane.PortConfig{Name: "nu", Type: dataplane.PortSystem, HasTag: true, Tag: 7}
	nu.Trunks.Add(9)
	nt := nu
	nt.Name, nt.Mode, nt.ModeSet = "nt", dataplane.ModeNativeTagged, true
	ts := newTestSwitch(t, access("a", 7), trunk("t"), nu, nt)
	f := eth(fdb.Broadcast, macA, -1, 100)
	ts.send(t, "a", f)
	want := map[string]int{"t": 7, "nu": -1, "nt": 7}
	for name, tag := range want {
		g := ts.got(name)
		if len(g) != 1 {
			t.Fatalf("%s got %d frames", name, len(g))
		}
		if got := tagOf(t, g[0]); got != tag {
			t.Errorf("%s: tag %d, want %d", name, got, tag)
		}
		if len(g[0]) != len(f)+map[bool]int{true: 4, false: 0}[tag >= 0] {
			t.Errorf("%s: frame length %d", name, len(g[0]))
		}
	}
	// From the native-untagged port, VLAN 9 tagged goes to the trunk tagged 9
	// and to native-tagged nt tagged; not to access a.
	ts.send(t, "nu", eth(fdb.Broadcast, macB, 9, 46))
	if g := ts.got("t"); len(g) != 1 || tagOf(t, g[0]) != 9 {
		t.Errorf("trunk: %d frames", len(g))
	}
	if g := ts.got("nt"); len(g) != 1 || tagOf(t, g[0]) != 9 {
		t.Errorf("nt: %d frames", len(g))
	}
	if g := ts.got("a"); len(g) != 0 {
		t.Errorf("VLAN 9 frame reached access port 7")
	}
}

func TestMTUAndMalformed(t *testing.T) {
	big := access("big", 7)
	big.MTU = 1500
	ts := newTestSwitch(t, access("a", 7), big)
	ts.send(t, "a", eth(fdb.Broadcast, macA, -1, 1500))
	if g := ts.got("big"); len(g) != 1 || len(g[0]) != 1514 {
		t.Fatalf("1500-byte payload: got %d frames", len(g))
	}
	ts.send(t, "a", eth(fdb.Broadcast, macA, -1, 1501))
	if g := ts.got("big"); len(g) != 0 {
		t.Fatalf("frame over the MTU was sent")
	}
	if n := ts.counters(t, "big").Drops["too_big"]; n != 1 {
		t.Errorf("too_big = %d, want 1", n)
	}
	short := eth(fdb.Broadcast, macA, -1, 0)[:13]
	badTag := eth(fdb.Broadcast, macA, 7, 0)[:16]
	ts.send(t, "a", short, badTag, []byte{})
	c := ts.counters(t, "a")
	if c.Drops["short"] != 2 || c.Drops["bad_vlan_header"] != 1 {
		t.Errorf("drops = %v, want short 2, bad_vlan_header 1", c.Drops)
	}
}

func TestTunnelPaths(t *testing.T) {
	ts := newTestSwitch(t, access("a", 7), access("b", 7))
	ts.withTunnel(t, dataplane.TunnelConfig{VNIs: map[uint16]uint32{7: 7007}})
	vtep := netip.MustParseAddr("198.51.100.3")

	// Flood goes to the tunnel untagged, VNI 7007, to every VTEP.
	ts.send(t, "a", eth(fdb.Broadcast, macA, -1, 46))
	s := ts.gotTunnel()
	if len(s) != 1 || s[0].Meta.VNI != 7007 || s[0].Meta.VTEP.IsValid() || tagOf(t, s[0].Frame) != -1 {
		t.Fatalf("tunnel got %+v", s)
	}
	// From the tunnel: learned behind the VTEP, delivered locally.
	ts.sendTunnel(t, eth(macA, macR, -1, 46), 7007, vtep)
	if g := ts.got("a"); len(g) != 1 {
		t.Fatalf("a got %d frames from the tunnel", len(g))
	}
	d, ok := ts.sw.FDB().Lookup(fdb.Key{VLAN: 7, MAC: macR})
	if !ok || d.Port != ts.sw.TunnelPortID() || d.VTEP != vtep {
		t.Fatalf("remote MAC learned as %+v %v", d, ok)
	}
	// Known remote unicast goes to that VTEP only.
	ts.send(t, "b", eth(macR, macB, -1, 46))
	s = ts.gotTunnel()
	if len(s) != 1 || s[0].Meta.VTEP != vtep {
		t.Fatalf("unicast to remote: %+v", s)
	}
	// A broadcast from the tunnel is not sent back into it.
	ts.sendTunnel(t, eth(fdb.Broadcast, macR, -1, 46), 7007, vtep)
	if s := ts.gotTunnel(); len(s) != 0 {
		t.Fatalf("split horizon broken: %+v", s)
	}
	// Unknown VNI and tagged inner frames are dropped.
	ts.sendTunnel(t, eth(fdb.Broadcast, macR, -1, 46), 8008, vtep)
	ts.sendTunnel(t, eth(fdb.Broadcast, macR, 7, 46), 7007, vtep)
	c := ts.counters(t, dataplane.TunnelName)
	if c.Drops["no_vni"] != 1 || c.Drops["vlan_not_allowed"] != 1 {
		t.Errorf("tunnel drops %v", c.Drops)
	}
	if n := ts.sw.FDB().PurgeVTEP(vtep); n != 1 {
		t.Errorf("PurgeVTEP removed %d entries, want 1", n)
	}
}

func TestTrunkVNI(t *testing.T) {
	ts := newTestSwitch(t, access("a", 7))
	ts.withTunnel(t, dataplane.TunnelConfig{TrunkVNI: 5000, HasTrunkVNI: true})
	ts.send(t, "a", eth(fdb.Broadcast, macA, -1, 46))
	s := ts.gotTunnel()
	if len(s) != 1 || s[0].Meta.VNI != 5000 || tagOf(t, s[0].Frame) != 7 {
		t.Fatalf("tunnel got %+v, want VNI 5000 tagged 7", s)
	}
	ts.sendTunnel(t, eth(macA, macR, 7, 46), 5000, netip.MustParseAddr("198.51.100.3"))
	if g := ts.got("a"); len(g) != 1 || tagOf(t, g[0]) != -1 {
		t.Fatalf("a got %d frames", len(g))
	}
	if got := ts.sw.VNIs(); len(got) != 1 || got[0] != 5000 {
		t.Errorf("VNIs() = %v", got)
	}
}

func TestPortDeleteAndGone(t *testing.T) {
	ts := newTestSwitch(t, access("a", 7), access("b", 7), access("c", 7))
	ts.send(t, "a", eth(fdb.Broadcast, macA, -1, 46))
	ts.send(t, "c", eth(fdb.Broadcast, macC, -1, 46))
	if err := ts.sw.DelPort("a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := ts.sw.FDB().Lookup(fdb.Key{VLAN: 7, MAC: macA}); ok {
		t.Error("entry of a deleted port survived")
	}
	ts.ports["c"].Vanish()
	waitFor(t, func() bool {
		for _, p := range ts.sw.Ports() {
			if p.Config.Name == "c" {
				return !p.Up
			}
		}
		return false
	})
	if _, ok := ts.sw.FDB().Lookup(fdb.Key{VLAN: 7, MAC: macC}); ok {
		t.Error("entry of a vanished port survived")
	}
	// The switch keeps forwarding between the others.
	ts.ports["b"].Written = make(chan []byte, 16)
	if _, err := ts.sw.AddPort(access("d", 7)); err != nil {
		t.Fatal(err)
	}
	ts.send(t, "d", eth(fdb.Broadcast, macC, -1, 46))
	if g := ts.got("b"); len(g) != 1 {
		t.Errorf("b got %d frames after c vanished", len(g))
	}
	if err := ts.sw.DelPort("nope"); err == nil {
		t.Error("deleting a missing port succeeded")
	}
}
