package overlay

import (
	"net/netip"
	"reflect"
	"testing"
)

func floodAddrs(s *vtepSnapshot, vni uint32) []string {
	var out []string
	for _, v := range s.flood[vni] {
		out = append(out, v.dst.String())
	}
	return out
}

func TestVTEPTable(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("198.51.100.2")
	c := netip.MustParseAddr("198.51.100.3")
	type flood map[uint32][]string
	tests := []struct {
		name  string
		ops   func(t *vtepTable)
		flood flood
		infos []VTEPInfo
	}{
		{
			name:  "empty",
			ops:   func(t *vtepTable) {},
			flood: flood{},
			infos: []VTEPInfo{},
		},
		{
			name: "static serves every VNI, also later ones",
			ops: func(t *vtepTable) {
				t.setVNIs([]uint32{7, 8})
				t.add(a, 0, nil, SourceStatic)
				t.setVNIs([]uint32{7, 8, 9})
			},
			flood: flood{7: {"198.51.100.1:4789"}, 8: {"198.51.100.1:4789"}, 9: {"198.51.100.1:4789"}},
			infos: []VTEPInfo{{Addr: a, Port: 4789, Source: "static", VNIs: []uint32{7, 8, 9}}},
		},
		{
			name: "gossip serves the VNIs it announces that the bridge carries",
			ops: func(t *vtepTable) {
				t.setVNIs([]uint32{7, 8})
				t.add(b, 4790, []uint32{8, 8, 100}, SourceGossip)
				t.add(c, 0, []uint32{}, SourceGossip)
			},
			flood: flood{8: {"198.51.100.2:4790"}},
			infos: []VTEPInfo{
				{Addr: b, Port: 4790, Source: "gossip", VNIs: []uint32{8}},
				{Addr: c, Port: 4789, Source: "gossip"},
			},
		},
		{
			name: "re-announce replaces VNIs",
			ops: func(t *vtepTable) {
				t.setVNIs([]uint32{7, 8})
				t.add(b, 0, []uint32{7}, SourceGossip)
				t.add(b, 0, []uint32{8}, SourceGossip)
			},
			flood: flood{8: {"198.51.100.2:4789"}},
			infos: []VTEPInfo{{Addr: b, Port: 4789, Source: "gossip", VNIs: []uint32{8}}},
		},
		{
			name: "both sources merge; static port wins; removing one keeps the other",
			ops: func(t *vtepTable) {
				t.setVNIs([]uint32{7, 8})
				t.add(a, 5000, []uint32{8}, SourceGossip)
				t.add(a, 0, nil, SourceStatic)
				t.add(b, 0, []uint32{7}, SourceGossip)
			},
			flood: flood{7: {"198.51.100.1:4789", "198.51.100.2:4789"}, 8: {"198.51.100.1:4789"}},
			infos: []VTEPInfo{
				{Addr: a, Port: 4789, Source: "static,gossip", VNIs: []uint32{7, 8}},
				{Addr: b, Port: 4789, Source: "gossip", VNIs: []uint32{7}},
			},
		},
		{
			name: "remove leaves flood lists at once",
			ops: func(t *vtepTable) {
				t.setVNIs([]uint32{7})
				t.add(a, 0, nil, SourceStatic)
				t.add(a, 0, []uint32{7}, SourceGossip)
				t.add(b, 0, []uint32{7}, SourceGossip)
				t.remove(a, SourceStatic)
				t.remove(b, SourceGossip)
				t.remove(c, SourceGossip) // unknown: no-op
			},
			flood: flood{7: {"198.51.100.1:4789"}},
			infos: []VTEPInfo{{Addr: a, Port: 4789, Source: "gossip", VNIs: []uint32{7}}},
		},
		{
			name: "mapped IPv4 is unmapped",
			ops: func(t *vtepTable) {
				t.setVNIs([]uint32{7})
				t.add(netip.MustParseAddr("::ffff:198.51.100.1"), 0, nil, SourceStatic)
			},
			flood: flood{7: {"198.51.100.1:4789"}},
			infos: []VTEPInfo{{Addr: a, Port: 4789, Source: "static", VNIs: []uint32{7}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newVTEPTable(DefaultPort)
			tt.ops(tab)
			s := tab.load()
			got := flood{}
			for vni := range s.flood {
				got[vni] = floodAddrs(s, vni)
			}
			if !reflect.DeepEqual(got, tt.flood) {
				t.Errorf("flood lists = %v, want %v", got, tt.flood)
			}
			if infos := tab.vteps(); !reflect.DeepEqual(infos, tt.infos) {
				t.Errorf("vteps() =\n%+v\nwant\n%+v", infos, tt.infos)
			}
		})
	}
}

func TestVTEPTableMembersAndStats(t *testing.T) {
	a := netip.MustParseAddr("2001:db8::1")
	tab := newVTEPTable(DefaultPort)
	tab.setVNIs([]uint32{1})
	if tab.isMember(a) {
		t.Fatal("member before add")
	}
	tab.add(a, 0, nil, SourceStatic)
	if !tab.isMember(a) {
		t.Fatal("not a member after add")
	}
	tab.load().byAddr[a].stats.txPackets.Add(3)
	tab.add(a, 0, []uint32{1}, SourceGossip) // rebuild keeps counters
	if got := tab.vteps()[0].TxPackets; got != 3 {
		t.Errorf("TxPackets after rebuild = %d, want 3", got)
	}
	tab.remove(a, SourceStatic)
	tab.remove(a, SourceGossip)
	if tab.isMember(a) {
		t.Fatal("member after remove")
	}
	tab.add(a, 0, nil, SourceStatic)
	if got := tab.vteps()[0].TxPackets; got != 0 {
		t.Errorf("TxPackets after re-add = %d, want a fresh 0", got)
	}
}

func TestFlowHash(t *testing.T) {
	// Two TCP/IPv4 frames differing only in the source port hash apart
	// (with overwhelming probability); the same frame hashes the same;
	// non-first IPv4 fragments ignore the bytes where ports would be.
	frame := func(sport byte, fragOff uint16) []byte {
		f := make([]byte, 14+20+20)
		copy(f, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00})
		ip := f[14:]
		ip[0] = 0x45
		ip[6], ip[7] = byte(fragOff>>8), byte(fragOff)
		ip[9] = ipProtoTCP
		copy(ip[12:], []byte{192, 0, 2, 1, 192, 0, 2, 2})
		ip[20], ip[21] = 0x30, sport
		ip[22], ip[23] = 0, 80
		return f
	}
	if flowHash(frame(1, 0), 9) != flowHash(frame(1, 0), 9) {
		t.Error("hash not deterministic")
	}
	if flowHash(frame(1, 0), 9) == flowHash(frame(2, 0), 9) {
		t.Error("source port does not change the hash")
	}
	if flowHash(frame(1, 0), 9) == flowHash(frame(1, 0), 10) {
		t.Error("seed does not change the hash")
	}
	if flowHash(frame(1, 0x0010), 9) != flowHash(frame(2, 0x0010), 9) {
		t.Error("a non-first fragment's payload changes the hash")
	}
	if flowHash(frame(1, 0x2000), 9) != flowHash(frame(2, 0x0010), 9) {
		t.Error("first and later fragments of one datagram hash apart")
	}
	for _, n := range []int{1, 3, 16} {
		for _, h := range []uint32{0, 1, 1 << 31, ^uint32(0)} {
			if p := pick(h, n); p < 0 || p >= n {
				t.Errorf("pick(%#x, %d) = %d", h, n, p)
			}
		}
	}
	if pick(^uint32(0), 16) != 15 {
		t.Error("pick does not reach the last bucket")
	}
}
