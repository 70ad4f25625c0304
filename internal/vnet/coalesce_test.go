package vnet

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// segmentsOf cuts a correct super-frame built from s into the segments TSO
// would send, each a separate slice with correct checksums.
func segmentsOf(t testing.TB, s frameSpec) (orig []byte, segs [][]byte) {
	t.Helper()
	orig = buildFrame(t, s)
	frame, h := offloaded(t, orig, s)
	out, sizes := outBufs(64, 1600+8948)
	n, err := Segment(frame, h, out, sizes, 0)
	if err != nil {
		t.Fatalf("%s: Segment: %v", s.name, err)
	}
	for i := range n {
		segs = append(segs, out[i][:sizes[i]])
	}
	return orig, segs
}

// coalesceAll runs frames through c as a port's write path does and
// returns what would be written: frames (copied) and their headers.
func coalesceAll(c *Coalescer, frames [][]byte) (out [][]byte, hdrs []Hdr) {
	emit := func() {
		h, f := c.Flush()
		if f != nil {
			out = append(out, bytes.Clone(f))
			hdrs = append(hdrs, h)
		}
	}
	for _, f := range frames {
		if !c.Append(f) {
			emit()
			if !c.Append(f) {
				panic("Append refused the first frame of a run")
			}
		}
	}
	emit()
	return out, hdrs
}

// TestCoalesceRoundTrip: the segments TSO makes of a super-frame coalesce
// back into that super-frame (its checksum left to the receiver as
// NEEDS_CSUM asks), and cutting the result again gives the same segments.
func TestCoalesceRoundTrip(t *testing.T) {
	specs := []frameSpec{
		{name: "tcp4/opts/psh", tcpOpts: true, psh: true, payload: 40 * 1448, mss: 1448},
		{name: "tcp4/max", tcpOpts: true, payload: 65535 - 20 - 32, mss: 1448},
		{name: "tcp4/jumbo", payload: 7 * 8948, mss: 8948},
		{name: "tcp4/short-last", payload: 10*1460 + 3, mss: 1460},
		{name: "tcp6/opts", v6: true, tcpOpts: true, payload: 44 * 1428, mss: 1428},
		{name: "tcp6/psh/short-last", v6: true, psh: true, payload: 5000, mss: 1440},
	}
	for _, s := range specs {
		t.Run(s.name, func(t *testing.T) {
			orig, segs := segmentsOf(t, s)
			c := NewCoalescer()
			out, hdrs := coalesceAll(c, segs)
			if len(out) != 1 {
				t.Fatalf("%d segments came out as %d frames, want 1", len(segs), len(out))
			}
			h, f := hdrs[0], out[0]
			wantType := uint8(GSOTCPv4)
			if s.v6 {
				wantType = GSOTCPv6
			}
			if h.Flags != FlagNeedsCsum || h.GSOType != wantType || int(h.GSOSize) != s.mss {
				t.Fatalf("header %+v: want NEEDS_CSUM, GSO type %d, gso_size %d", h, wantType, s.mss)
			}
			finished := bytes.Clone(f)
			fh := h
			fh.GSOType, fh.GSOSize = GSONone, 0
			if err := FinishChecksum(finished, fh); err != nil {
				t.Fatalf("FinishChecksum: %v", err)
			}
			if !bytes.Equal(finished, orig) {
				t.Fatalf("coalesced frame (checksum finished) differs from the original super-frame")
			}
			again, sizes := outBufs(64, 1600+8948)
			n, err := Segment(f, h, again, sizes, 0)
			if err != nil {
				t.Fatalf("Segment of the coalesced frame: %v", err)
			}
			if n != len(segs) {
				t.Fatalf("re-cut into %d segments, want %d", n, len(segs))
			}
			for i := range n {
				if !bytes.Equal(again[i][:sizes[i]], segs[i]) {
					t.Fatalf("segment %d differs after coalesce and re-cut", i)
				}
			}
		})
	}
}

// TestCoalesceKeepsApart: frames GRO would not merge pass through alone
// and unchanged, in order, with a zero header.
func TestCoalesceKeepsApart(t *testing.T) {
	base := frameSpec{name: "base", tcpOpts: true, payload: 4 * 1000, mss: 1000}
	_, segs := segmentsOf(t, base)
	mutate := func(i int, fn func(f []byte)) [][]byte {
		out := make([][]byte, len(segs))
		for j := range segs {
			out[j] = bytes.Clone(segs[j])
		}
		fn(out[i])
		return out
	}
	const ip, tcp = ethHdrLen, ethHdrLen + ipv4MinHdrLen
	fixTCP := func(f []byte) { // recompute the TCP checksum after a change
		l, err := parse(f)
		if err != nil {
			t.Fatal(err)
		}
		f[l.l4+tcpCsumOff], f[l.l4+tcpCsumOff+1] = 0, 0
		src, dst := l.addrs(f)
		binary.BigEndian.PutUint16(f[l.l4+tcpCsumOff:], ^checksum(f[l.l4:l.end], pseudoSum(src, dst, protoTCP, l.end-l.l4)))
	}
	cases := []struct {
		name   string
		frames [][]byte
		want   []int // segments per frame written
	}{
		{"all merge", segs, []int{4}},
		{"sequence gap", mutate(2, func(f []byte) {
			binary.BigEndian.PutUint32(f[tcp+tcpSeqOff:], binary.BigEndian.Uint32(f[tcp+tcpSeqOff:])+1)
			fixTCP(f)
		}), []int{2, 1, 1}}, // 3 follows 2's original sequence, not 2's
		{"other port", mutate(1, func(f []byte) { f[tcp+1]++; fixTCP(f) }), []int{1, 1, 2}},
		{"other ack", mutate(3, func(f []byte) { f[tcp+11]++; fixTCP(f) }), []int{3, 1}},
		{"other window", mutate(1, func(f []byte) { f[tcp+15]++; fixTCP(f) }), []int{1, 1, 2}},
		{"other timestamp", mutate(2, func(f []byte) { f[tcp+tcpMinHdrLen+11]++; fixTCP(f) }), []int{2, 1, 1}},
		{"other TTL", mutate(1, func(f []byte) {
			f[ip+8]--
			f[ip+ipv4CsumOff], f[ip+ipv4CsumOff+1] = 0, 0
			binary.BigEndian.PutUint16(f[ip+ipv4CsumOff:], ^checksum(f[ip:tcp], 0))
		}), []int{1, 1, 2}},
		{"other MAC", mutate(1, func(f []byte) { f[0] ^= 0x40 }), []int{1, 1, 2}},
		{"FIN", mutate(1, func(f []byte) { f[tcp+tcpFlagsOff] |= tcpFlagFIN; fixTCP(f) }), []int{1, 1, 2}},
		{"CWR", mutate(0, func(f []byte) { f[tcp+tcpFlagsOff] |= tcpFlagCWR; fixTCP(f) }), []int{1, 3}},
		{"PSH ends a run", mutate(1, func(f []byte) { f[tcp+tcpFlagsOff] |= tcpFlagPSH; fixTCP(f) }), []int{2, 2}},
		{"PSH alone first", mutate(0, func(f []byte) { f[tcp+tcpFlagsOff] |= tcpFlagPSH; fixTCP(f) }), []int{1, 3}},
		{"bad checksum joins nothing", mutate(2, func(f []byte) { f[len(f)-1] ^= 0xff }), []int{2, 1, 1}},
		{"bad checksum of the first", mutate(0, func(f []byte) { f[len(f)-1] ^= 0xff }), []int{1, 3}},
		{"padding", mutate(1, func(f []byte) {
			binary.BigEndian.PutUint16(f[ip+ipv4TotalLenOff:], binary.BigEndian.Uint16(f[ip+ipv4TotalLenOff:])-1)
			f[ip+ipv4CsumOff], f[ip+ipv4CsumOff+1] = 0, 0
			binary.BigEndian.PutUint16(f[ip+ipv4CsumOff:], ^checksum(f[ip:tcp], 0))
		}), []int{1, 1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := make([][]byte, len(tc.frames))
			for i := range tc.frames {
				in[i] = bytes.Clone(tc.frames[i])
			}
			out, hdrs := coalesceAll(NewCoalescer(), tc.frames)
			var got []int
			k := 0
			for i, f := range out {
				n := 1
				if hdrs[i].GSOType != GSONone {
					n = (len(f) - int(hdrs[i].HdrLen) + int(hdrs[i].GSOSize) - 1) / int(hdrs[i].GSOSize)
				} else if !bytes.Equal(f, in[k]) {
					t.Fatalf("frame %d written alone was changed", k)
				}
				got = append(got, n)
				k += n
			}
			if !equalInts(got, tc.want) {
				t.Fatalf("written as runs of %v segments, want %v", got, tc.want)
			}
			for i := range tc.frames {
				if !bytes.Equal(tc.frames[i], in[i]) {
					t.Fatalf("input frame %d modified", i)
				}
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCoalesceOthersPass: non-TCP, tagged, short or option-carrying frames
// are written alone and unchanged.
func TestCoalesceOthersPass(t *testing.T) {
	specs := []frameSpec{
		{name: "udp4", udp: true, payload: 1000},
		{name: "tcp4/vlan", tags: 1, payload: 1000},
		{name: "tcp4/ipopts", ipOpts: true, payload: 1000},
		{name: "tcp4/no-payload", payload: 0},
	}
	for _, s := range specs {
		f := buildFrame(t, s)
		out, hdrs := coalesceAll(NewCoalescer(), [][]byte{f, f, f})
		if len(out) != 3 {
			t.Fatalf("%s: 3 frames came out as %d", s.name, len(out))
		}
		for i := range out {
			if hdrs[i] != (Hdr{}) || !bytes.Equal(out[i], f) {
				t.Fatalf("%s: frame %d changed or got a header %+v", s.name, i, hdrs[i])
			}
		}
	}
	runt := []byte{1, 2, 3}
	out, _ := coalesceAll(NewCoalescer(), [][]byte{runt, runt})
	if len(out) != 2 {
		t.Fatalf("runts: %d frames out, want 2", len(out))
	}
}

// TestCoalesceLimit: a run stops before the IP packet would pass 64 KiB.
func TestCoalesceLimit(t *testing.T) {
	var segs [][]byte
	for range 3 {
		_, s := segmentsOf(t, frameSpec{name: "40K", payload: 40 * 1000, mss: 1000})
		segs = append(segs, s...)
	}
	// Three copies of the same 40 segments: the sequence restarts after
	// each 40, so runs can be at most 40 long; and 40 KB + 40 KB > 64 KiB
	// would not fit anyway.
	out, hdrs := coalesceAll(NewCoalescer(), segs)
	if len(out) != 3 {
		t.Fatalf("%d frames, want 3", len(out))
	}
	for i := range out {
		if len(out[i]) > ethHdrLen+MaxCoalesced || hdrs[i].GSOType != GSOTCPv4 {
			t.Fatalf("frame %d: %d bytes, header %+v", i, len(out[i]), hdrs[i])
		}
	}
	// One long stream of 1000-byte segments: runs cut at 64 KiB.
	_, long := segmentsOf(t, frameSpec{name: "60K", payload: 60 * 1000, mss: 1000})
	_, tail := segmentsOf(t, frameSpec{name: "tail", payload: 15 * 1000, mss: 1000})
	next := binary.BigEndian.Uint32(long[len(long)-1][ethHdrLen+ipv4MinHdrLen+tcpSeqOff:]) + 1000
	for _, f := range tail {
		binary.BigEndian.PutUint32(f[ethHdrLen+ipv4MinHdrLen+tcpSeqOff:], next)
		next += 1000
		l, _ := parse(f)
		f[l.l4+tcpCsumOff], f[l.l4+tcpCsumOff+1] = 0, 0
		src, dst := l.addrs(f)
		binary.BigEndian.PutUint16(f[l.l4+tcpCsumOff:], ^checksum(f[l.l4:l.end], pseudoSum(src, dst, protoTCP, l.end-l.l4)))
	}
	out, _ = coalesceAll(NewCoalescer(), append(long, tail...))
	if len(out) != 2 {
		t.Fatalf("75 segments of 1000 B: %d frames, want 2 (64 KiB limit)", len(out))
	}
	if ipLen := len(out[0]) - ethHdrLen; ipLen > MaxCoalesced || ipLen < MaxCoalesced-1000 {
		t.Fatalf("first run has an IP packet of %d bytes, want just under %d", ipLen, MaxCoalesced)
	}
}

func TestCoalesceAllocs(t *testing.T) {
	_, segs := segmentsOf(t, frameSpec{name: "a", tcpOpts: true, payload: 40 * 1448, mss: 1448})
	c := NewCoalescer()
	allocs := testing.AllocsPerRun(100, func() {
		for _, f := range segs {
			if !c.Append(f) {
				c.Flush()
				c.Append(f)
			}
		}
		c.Flush()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run, want 0", allocs)
	}
}

// BenchmarkCoalesce: 44 MSS-sized segments (64 KiB) into one frame; the
// cost is a checksum check and a copy of each segment.
func BenchmarkCoalesce(b *testing.B) {
	_, segs := segmentsOf(b, frameSpec{name: "a", tcpOpts: true, payload: 44 * 1448, mss: 1448})
	c := NewCoalescer()
	b.SetBytes(int64(44 * 1448))
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range segs {
			if !c.Append(f) {
				c.Flush()
				c.Append(f)
			}
		}
		c.Flush()
	}
}

// BenchmarkCoalesceOther: what the write path pays per frame that is not
// TCP (a 64-byte UDP stream): each frame starts a run of its own.
func BenchmarkCoalesceOther(b *testing.B) {
	f := buildFrame(b, frameSpec{name: "udp", udp: true, payload: 18})
	c := NewCoalescer()
	b.ReportAllocs()
	for b.Loop() {
		if !c.Append(f) {
			c.Flush()
			c.Append(f)
		}
	}
}
