package dataplane

import (
	"bytes"

	"testing"

	"github.com/vxswitch/vxswitch/internal/testutil"
)

// TestSystemRecvmmsg runs the system port's receive tests again on ports
// without a receive ring (RingFrames < 0), the recvmmsg path; every other
// test of the package uses the ring.
func TestSystemRecvmmsg(t *testing.T) {
	testutil.RequireRoot(t)
	ptRxMode = SystemOptions{RingFrames: -1}
	t.Cleanup(func() { ptRxMode = SystemOptions{} })
	for name, test := range map[string]func(*testing.T){
		"ReadWrite":         TestSystemReadWrite,
		"Jumbo":             TestSystemJumbo,
		"TooBigDropped":     TestSystemTooBigDropped,
		"VLANTagKept":       TestSystemVLANTagKept,
		"CloseUnblocks":     TestSystemCloseUnblocksRead,
		"Gone":              TestSystemGone,
		"Allocs":            TestSystemAllocs,
		"OffloadFrames":     TestSystemOffloadFrames,
		"OffloadSmallBatch": TestSystemOffloadSmallBatch,
		"ReadAllocs":        TestSystemReadAllocs,
		"TCPThroughHub":     TestSystemTCPThroughHub,
	} {
		t.Run(name, test)
	}
}

// TestSystemRingWraps goes round a small ring many times with frames of
// mixed sizes: those over a slot (jumbo frames, read from the socket
// queue) come out in their place among those in slots.
func TestSystemRingWraps(t *testing.T) {
	local, peer, ns := ptVeth(t, 9000)
	p := ptOpenSystem(t, local, SystemOptions{RingFrames: 32})
	if p.ring == nil || p.ring.frames != 32 {
		t.Fatalf("port has no ring of 32 slots: %+v", p.ring)
	}
	fd := ptPacketSocket(t, ns, peer)
	seq := uint32(0)
	for round := range 10 {
		var sent [][]byte
		for i := range 25 {
			size := 60 + i*40
			if (i+round)%7 == 0 {
				size = 3000 + i*200 // over a 2 KiB slot
			}
			sent = append(sent, ptFrame(t, ptMACB, ptMACA, size, seq))
			seq++
		}
		ptSend(t, fd, sent...)
		got := ptReadFrames(t, p, 9100, len(sent), ptIsTest)
		for i := range got {
			if !bytes.Equal(got[i], sent[i]) {
				t.Fatalf("round %d frame %d: got %d bytes seq %d, want %d bytes seq %d",
					round, i, len(got[i]), ptSeq(got[i]), len(sent[i]), ptSeq(sent[i]))
			}
		}
	}
	if d := p.DropCounts(); d != (PortDrops{}) {
		t.Errorf("drops %+v, want none", d)
	}
}

// TestSystemRingMode: ports have a receive ring unless RingFrames < 0, and
// after Close unmapped it ReadReady does not touch it and says true, so
// that a busy-polling reader goes on to ReadBatch and sees the close.
func TestSystemRingMode(t *testing.T) {
	local, _, _ := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{})
	if p.ring == nil || p.ring.frames != DefaultRingFrames {
		t.Fatalf("default port: ring %+v, want %d slots", p.ring, DefaultRingFrames)
	}
	if p.ReadReady() {
		t.Error("ReadReady on an idle port")
	}
	p.Close()
	if !p.ReadReady() {
		t.Error("ReadReady after Close: false, want true (ReadBatch reports the close)")
	}
	if _, err := p.ReadBatch(make([][]byte, 1), make([]int, 1), 0); err == nil {
		t.Error("ReadBatch after Close: no error")
	}
	q := ptOpenSystem(t, local, SystemOptions{RingFrames: -1})
	if q.ring != nil {
		t.Fatal("RingFrames -1: port has a ring")
	}
}

// TestSystemRingOverflow: frames that find the ring full are dropped by
// the kernel and counted as RxOverflow; the frames in the ring come out
// whole and in order.
func TestSystemRingOverflow(t *testing.T) {
	local, peer, ns := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{RingFrames: 32})
	fd := ptPacketSocket(t, ns, peer)
	var sent [][]byte
	for i := range 100 {
		sent = append(sent, ptFrame(t, ptMACB, ptMACA, 64, uint32(i)))
	}
	ptSend(t, fd, sent...) // nobody reads meanwhile
	d := p.DropCounts()
	got := ptReadFrames(t, p, 2048, 32, ptIsTest)
	for i := range got {
		if !bytes.Equal(got[i], sent[i]) {
			t.Fatalf("frame %d: got seq %d, want %d", i, ptSeq(got[i]), i)
		}
	}
	// Other frames (IPv6 neighbour discovery, say) may have taken slots
	// too, so at least 100-32 were dropped.
	if d.RxOverflow < 100-32 || d.RxOverflow > 100 {
		t.Errorf("RxOverflow = %d after 100 frames into 32 slots, want 68-100", d.RxOverflow)
	}
	if again := p.DropCounts().RxOverflow; again != d.RxOverflow {
		t.Errorf("RxOverflow moved from %d to %d with nothing sent", d.RxOverflow, again)
	}
}
