package overlay

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/vxswitch/vxswitch/dataplane"
)

// splitCase is a batch of received messages built from fuzz input, with
// what a simple model says must come out of it.
type splitCase struct {
	msgs  [][]byte // message bytes
	gsos  []int
	srcs  []netip.Addr
	want  []received
	drops [numDropReasons]uint64
}

var (
	splitMember   = netip.MustParseAddr("192.0.2.1")
	splitStranger = netip.MustParseAddr("192.0.2.9")
)

// buildSplitCase reads messages from spec, 4 bytes each plus contents:
// segment size, segment count, the last segment's length, the sender;
// then one kind byte per segment (good, no I flag, unknown VNI, short),
// whose other bits fill the frame. capacity is the largest datagram a
// caller's buffer takes; members turns the sender check on.
func buildSplitCase(spec []byte, maxMsgs, capacity, slotSize int, members bool) *splitCase {
	c := &splitCase{}
	for len(spec) >= 4 && len(c.msgs) < maxMsgs {
		gso := 1 + int(spec[0])*int(spec[0])/8 // 1..8129, small ones likelier
		segs := 1 + int(spec[1])%70
		last := 1 + int(spec[2])%gso
		src := splitMember
		if spec[3]&1 == 1 {
			src = splitStranger
		}
		spec = spec[4:]
		if (segs-1)*gso+last > slotSize {
			segs = max(1, (slotSize-last)/gso+1)
		}
		if segs == 1 && spec != nil && len(spec) > 0 && spec[0] == 0xff {
			last = 0 // an empty datagram
		}
		var msg []byte
		for s := range segs {
			size := gso
			if s == segs-1 {
				size = last
			}
			kind := byte(0)
			if len(spec) > 0 {
				kind, spec = spec[0], spec[1:]
			}
			d := make([]byte, size)
			for i := range d {
				d[i] = kind + byte(i) + byte(s)
			}
			if size >= VXLANHdrLen {
				vni := uint32(7)
				if kind%4 == 2 {
					vni = 8
				}
				PutHeader(d, vni)
				if kind%4 == 1 {
					d[0] = 0
				}
			}
			msg = append(msg, d...)

			// The model.
			r := DropNone
			switch {
			case members && src != splitMember:
				r = DropUnknownSender
			case size > capacity:
				r = DropTruncated
			case size < MinPacketLen:
				r = DropShort
			case kind%4 == 1:
				r = DropNoIFlag
			case kind%4 == 2:
				r = DropUnknownVNI
			}
			if r != DropNone {
				c.drops[r]++
				continue
			}
			c.want = append(c.want, received{d[VXLANHdrLen:], dataplane.TunnelMeta{VNI: 7, VTEP: src}})
		}
		c.msgs = append(c.msgs, msg)
		c.gsos = append(c.gsos, gso)
		c.srcs = append(c.srcs, src)
	}
	return c
}

// FuzzRxSplit receives messages the way ReadBatch does, in either layout,
// and hands them out over as many fill calls as it takes, scribbling
// over the caller's buffers between calls. Every datagram must come out
// once, in order and intact, or be counted under the model's reason; no
// call returns more than it has buffers for or writes in front of
// off-VXLANHdrLen.
func FuzzRxSplit(f *testing.F) {
	f.Add(true, uint8(4), uint16(2048), uint8(8), false, []byte{40, 20, 255, 0, 0, 1, 0, 2, 0, 3})
	f.Add(false, uint8(1), uint16(100), uint8(8), true, []byte{10, 5, 3, 1, 0, 0, 0, 0, 0, 30, 1, 1, 0, 0})
	f.Add(true, uint8(16), uint16(9000), uint8(64), false, []byte{255, 7, 100, 0, 120, 60, 10, 0, 1, 2, 3, 4, 5})
	f.Add(true, uint8(3), uint16(16384), uint8(8), false, []byte{0, 0, 0, 0, 0xff, 5, 0, 0, 0})
	f.Fuzz(func(t *testing.T, inCaller bool, nbufs uint8, bufSize uint16, off uint8, members bool, spec []byte) {
		const slotSize = 1 << 14
		nb := 1 + int(nbufs)%16
		o := VXLANHdrLen + int(off)%64
		size := int(bufSize) % 20000 // after o
		c := buildSplitCase(spec, nb, size+VXLANHdrLen, slotSize, members)

		// Receive: into bufs[i][o-8:] and then slot i, or into slot i.
		bufs := make([][]byte, nb)
		for i := range bufs {
			bufs[i] = bytes.Repeat([]byte{0xa5}, o+size)
		}
		slots := make([]byte, nb*slotSize)
		var s rxSplit
		for i, msg := range c.msgs {
			slot := slots[i*slotSize : (i+1)*slotSize : (i+1)*slotSize]
			s.msgs = append(s.msgs, rxMsg{})
			m := &s.msgs[len(s.msgs)-1]
			m.set(slot, bufs[i][o-VXLANHdrLen:], inCaller, len(msg), c.gsos[i], c.srcs[i], false)
			k := copy(m.p0, msg)
			copy(m.p1, msg[k:])
		}

		snap := newVTEPTable(DefaultPort)
		snap.setVNIs([]uint32{7})
		snap.add(splitMember, 0, nil, SourceStatic)
		sizes := make([]int, nb)
		meta := make([]dataplane.TunnelMeta, nb)
		var got []received
		var drops [numDropReasons]uint64
		for calls := 0; ; calls++ {
			if calls > 10000 {
				t.Fatal("fill does not finish")
			}
			w, bytesOut := s.fill(bufs, sizes, meta, o, nb, snap.load(), members, &drops)
			if w > nb {
				t.Fatalf("fill = %d with %d buffers", w, nb)
			}
			var sum uint64
			for i := range w {
				got = append(got, received{bytes.Clone(bufs[i][o : o+sizes[i]]), meta[i]})
				sum += uint64(sizes[i])
			}
			if sum != bytesOut {
				t.Fatalf("fill reports %d bytes, frames hold %d", bytesOut, sum)
			}
			for i := range bufs {
				if !bytes.Equal(bufs[i][:o-VXLANHdrLen], bytes.Repeat([]byte{0xa5}, o-VXLANHdrLen)) {
					t.Fatalf("buffer %d written in front of off-%d", i, VXLANHdrLen)
				}
				for j := o - VXLANHdrLen; j < len(bufs[i]); j++ {
					bufs[i][j] = 0xee // the caller reuses its buffers
				}
			}
			if !s.pending() {
				break
			}
		}
		if drops != c.drops {
			t.Errorf("drops %v, want %v", drops, c.drops)
		}
		if len(got) != len(c.want) {
			t.Fatalf("%d frames, want %d", len(got), len(c.want))
		}
		for i := range got {
			if !bytes.Equal(got[i].frame, c.want[i].frame) || got[i].meta != c.want[i].meta {
				t.Fatalf("frame %d: %d bytes % x... %+v, want %d bytes % x... %+v", i,
					len(got[i].frame), got[i].frame[:min(8, len(got[i].frame))], got[i].meta,
					len(c.want[i].frame), c.want[i].frame[:min(8, len(c.want[i].frame))], c.want[i].meta)
			}
		}
	})
}
