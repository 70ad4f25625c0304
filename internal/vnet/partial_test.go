package vnet

import (
	"bytes"
	"testing"
)

func TestFixPartialChecksum(t *testing.T) {
	specs := []frameSpec{
		{name: "tcp4", payload: 1000},
		{name: "tcp4 tagged options", tags: 1, tcpOpts: true, payload: 333},
		{name: "tcp6", v6: true, payload: 1400},
		{name: "udp4", udp: true, payload: 100},
		{name: "udp6 odd", v6: true, udp: true, payload: 77},
		{name: "tcp4 empty", payload: 0},
	}
	for _, s := range specs {
		t.Run(s.name, func(t *testing.T) {
			good := buildFrame(t, s)
			partial, _ := offloaded(t, good, s)
			if bytes.Equal(partial, good) {
				t.Fatal("test frame: partial form equals the finished one")
			}
			f := append([]byte(nil), partial...)
			if !FixPartialChecksum(f) {
				t.Fatal("partial checksum not recognised")
			}
			if !bytes.Equal(f, good) {
				t.Fatalf("finished frame differs from the original\n got %x\nwant %x", f, good)
			}
			// A finished frame is left alone.
			g := append([]byte(nil), good...)
			if FixPartialChecksum(g) || !bytes.Equal(g, good) {
				t.Error("a correct checksum was changed")
			}
		})
	}
}

func TestFixPartialChecksumLeavesOthers(t *testing.T) {
	udp := buildFrame(t, frameSpec{name: "udp4", udp: true, payload: 20})
	l, _ := parse(udp)
	udp[l.l4+udpCsumOff], udp[l.l4+udpCsumOff+1] = 0, 0 // no checksum
	arp := make([]byte, 60)
	arp[12], arp[13] = 0x08, 0x06
	for name, f := range map[string][]byte{"udp4 zero": udp, "arp": arp, "short": {1, 2, 3}, "empty": nil} {
		before := append([]byte(nil), f...)
		if FixPartialChecksum(f) || !bytes.Equal(f, before) {
			t.Errorf("%s: changed", name)
		}
	}
}

func TestFixPartialChecksumAllocs(t *testing.T) {
	s := frameSpec{name: "tcp4", payload: 1400}
	partial, _ := offloaded(t, buildFrame(t, s), s)
	f := make([]byte, len(partial))
	if n := testing.AllocsPerRun(100, func() {
		copy(f, partial)
		FixPartialChecksum(f)
	}); n != 0 {
		t.Errorf("allocates %v times", n)
	}
}

func FuzzFixPartialChecksum(f *testing.F) {
	s := frameSpec{name: "tcp4", payload: 64}
	good := buildFrame(f, s)
	partial, _ := offloaded(f, good, s)
	f.Add(good)
	f.Add(partial)
	f.Fuzz(func(t *testing.T, b []byte) {
		c := append([]byte(nil), b...)
		if FixPartialChecksum(c) {
			// Now finished: a second call finds nothing to do, and only
			// the two checksum bytes changed.
			if FixPartialChecksum(append([]byte(nil), c...)) && len(c) > 0 {
				d := append([]byte(nil), c...)
				FixPartialChecksum(d)
				if !bytes.Equal(d, c) {
					t.Fatal("not idempotent")
				}
			}
			diff := 0
			for i := range b {
				if b[i] != c[i] {
					diff++
				}
			}
			if diff > 2 {
				t.Fatalf("%d bytes changed", diff)
			}
		}
	})
}

func BenchmarkFixPartialChecksum(b *testing.B) {
	s := frameSpec{name: "tcp4", payload: 1448}
	good := buildFrame(b, s)
	b.Run("finished", func(b *testing.B) {
		for b.Loop() {
			FixPartialChecksum(good)
		}
	})
}

func TestSegmentForMTU(t *testing.T) {
	for _, s := range []frameSpec{
		{name: "tcp4 64k", payload: 65000, tcpOpts: true},
		{name: "tcp6 tagged", v6: true, tags: 1, payload: 20000},
	} {
		t.Run(s.name, func(t *testing.T) {
			good := buildFrame(t, s)
			partial, _ := offloaded(t, good, s)
			out, sizes := outBufs(64, 2000)
			n, err := SegmentForMTU(partial, 1500, out, sizes, 0)
			if err != nil {
				t.Fatal(err)
			}
			segs := make([][]byte, n)
			for i := range segs {
				segs[i] = out[i][:sizes[i]]
				l, err := parse(segs[i])
				if err != nil || l.end-l.ip > 1500 {
					t.Fatalf("segment %d: IP packet of %d bytes (%v), want <= 1500", i, l.end-l.ip, err)
				}
			}
			l, _ := parse(partial)
			checkSegments(t, good, 1500-(l.data-l.ip), segs)
		})
	}
	udp := buildFrame(t, frameSpec{name: "udp", udp: true, payload: 3000})
	out, sizes := outBufs(8, 2000)
	if _, err := SegmentForMTU(udp, 1500, out, sizes, 0); err != ErrUnsupported {
		t.Errorf("UDP: err %v, want ErrUnsupported", err)
	}
}
