package vnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

var segmentSpecs = []frameSpec{
	{name: "tcp4/64K/opts/fin+psh", tcpOpts: true, fin: true, psh: true, payload: 45 * 1448, mss: 1448},
	{name: "tcp4/64K-max/opts", tcpOpts: true, payload: 65535 - 20 - 32, mss: 1448},
	{name: "tcp4/ipopts+tcpopts/vlan/cwr", ipOpts: true, tcpOpts: true, tags: 1, cwr: true, psh: true, payload: 10000, mss: 1448},
	{name: "tcp4/exact-multiple", payload: 4000, mss: 1000},
	{name: "tcp4/one-segment", psh: true, payload: 900, mss: 1448},
	{name: "tcp4/mss1", tcpOpts: true, payload: 37, mss: 1},
	{name: "tcp4/qinq", tags: 2, tcpOpts: true, payload: 9000, mss: 8948},
	{name: "tcp6/64K/opts/psh", v6: true, tcpOpts: true, psh: true, payload: 65000, mss: 1428},
	{name: "tcp6/vlan/cwr+fin", v6: true, tags: 1, cwr: true, fin: true, payload: 5000, mss: 1220},
	{name: "tcp6/qinq/no-opts", v6: true, tags: 2, payload: 3000, mss: 1440},
	{name: "udp4/uso", udp: true, payload: 8000, mss: 1472},
	{name: "udp4/uso/vlan/exact", udp: true, tags: 1, payload: 4 * 1400, mss: 1400},
	{name: "udp6/uso/vlan", v6: true, udp: true, tags: 1, payload: 5000, mss: 1000},
	{name: "udp6/uso/64K", v6: true, udp: true, payload: 64 * 1000, mss: 1000},
	{name: "udp4/one-segment", udp: true, payload: 100, mss: 1472},
}

func TestSegment(t *testing.T) {
	for _, s := range segmentSpecs {
		t.Run(s.name, func(t *testing.T) {
			orig := buildFrame(t, s)
			frame, h := offloaded(t, orig, s)
			before := bytes.Clone(frame)
			const outOff = 24 // headroom, as a VXLAN encapsulation would leave
			out, sizes := outBufs(64, outOff+1600+8948)
			for _, b := range out {
				for i := range outOff {
					b[i] = 0xaa
				}
			}
			n, err := Segment(frame, h, out, sizes, outOff)
			if err != nil {
				t.Fatalf("Segment: %v", err)
			}
			want := max(1, (s.payload+s.mss-1)/s.mss)
			if n != want {
				t.Fatalf("Segment returned %d segments, want %d", n, want)
			}
			if !bytes.Equal(frame, before) {
				t.Fatal("Segment modified its input")
			}
			segs := make([][]byte, n)
			for i := range n {
				segs[i] = out[i][outOff : outOff+sizes[i]]
				if !bytes.Equal(out[i][:outOff], bytes.Repeat([]byte{0xaa}, outOff)) {
					t.Fatalf("segment %d: headroom before outOff written", i)
				}
			}
			checkSegments(t, orig, s.mss, segs)
		})
	}
}

// TestSegmentBIGTCP: an IP length field of 0 means the packet runs to the
// end of the frame, as in the kernel's BIG TCP.
func TestSegmentBIGTCP(t *testing.T) {
	for _, s := range []frameSpec{
		{name: "tcp4", tcpOpts: true, payload: 9000, mss: 1448},
		{name: "tcp6", v6: true, tcpOpts: true, payload: 9000, mss: 1448},
	} {
		t.Run(s.name, func(t *testing.T) {
			orig := buildFrame(t, s)
			frame, h := offloaded(t, orig, s)
			l, _ := parse(frame)
			if s.v6 {
				binary.BigEndian.PutUint16(frame[l.ip+ipv6PayloadLenOff:], 0)
			} else {
				binary.BigEndian.PutUint16(frame[l.ip+ipv4TotalLenOff:], 0)
			}
			out, sizes := outBufs(16, 1600)
			n, err := Segment(frame, h, out, sizes, 0)
			if err != nil {
				t.Fatal(err)
			}
			segs := make([][]byte, n)
			for i := range n {
				segs[i] = out[i][:sizes[i]]
			}
			checkSegments(t, orig, s.mss, segs)
		})
	}
}

// TestSegmentNone: a frame without GSO is copied, its checksum finished.
func TestSegmentNone(t *testing.T) {
	for _, s := range []frameSpec{
		{name: "tcp4", tcpOpts: true, payload: 1000},
		{name: "udp6/vlan", v6: true, udp: true, tags: 1, payload: 333},
	} {
		t.Run(s.name, func(t *testing.T) {
			orig := buildFrame(t, s)
			frame, h := offloaded(t, orig, s)
			out, sizes := outBufs(1, 2000)
			n, err := Segment(frame, h, out, sizes, 10)
			if err != nil || n != 1 {
				t.Fatalf("Segment = %d, %v; want 1, nil", n, err)
			}
			if got := out[0][10 : 10+sizes[0]]; !bytes.Equal(got, orig) {
				t.Fatalf("got\n% x\nwant\n% x", got, orig)
			}
			// Not even NEEDS_CSUM: copied as it is.
			n, err = Segment(orig, Hdr{}, out, sizes, 0)
			if err != nil || n != 1 || !bytes.Equal(out[0][:sizes[0]], orig) {
				t.Fatalf("Segment without flags = %d, %v, or the copy differs", n, err)
			}
		})
	}
}

func TestSegmentErrors(t *testing.T) {
	tcp4 := frameSpec{name: "tcp4", tcpOpts: true, payload: 5000, mss: 1000}
	tcp6 := frameSpec{name: "tcp6", v6: true, payload: 5000, mss: 1000}
	udp4 := frameSpec{name: "udp4", udp: true, payload: 5000, mss: 1000}
	type tc struct {
		name   string
		spec   frameSpec
		edit   func(f []byte, h *Hdr) []byte
		nOut   int
		outLen int
		outOff int
		want   error
	}
	l4 := func(f []byte) layout { l, _ := parse(f); return l }
	tests := []tc{
		{name: "ufo", spec: udp4, edit: func(f []byte, h *Hdr) []byte { h.GSOType = GSOUDP; return f }, want: ErrUFO},
		{name: "unknown gso_type", spec: tcp4, edit: func(f []byte, h *Hdr) []byte { h.GSOType = 2; return f }, want: ErrGSOType},
		{name: "gso_size 0", spec: tcp4, edit: func(f []byte, h *Hdr) []byte { h.GSOSize = 0; return f }, want: ErrGSOSize},
		{name: "tcpv4 on ipv6", spec: tcp6, edit: func(f []byte, h *Hdr) []byte { h.GSOType = GSOTCPv4; return f }, want: ErrMalformed},
		{name: "tcpv6 on ipv4", spec: tcp4, edit: func(f []byte, h *Hdr) []byte { h.GSOType = GSOTCPv6; return f }, want: ErrMalformed},
		{name: "udp_l4 on tcp", spec: tcp4, edit: func(f []byte, h *Hdr) []byte { h.GSOType = GSOUDPL4; return f }, want: ErrMalformed},
		{name: "tcpv4 on udp", spec: udp4, edit: func(f []byte, h *Hdr) []byte { h.GSOType = GSOTCPv4; return f }, want: ErrMalformed},
		{name: "too few buffers", spec: tcp4, nOut: 4, want: ErrTooManySegments},
		{name: "no buffers", spec: tcp4, nOut: -1, want: ErrTooManySegments},
		{name: "buffer too short", spec: tcp4, outLen: 1000, want: ErrShortBuffer},
		{name: "outOff past buffer", spec: tcp4, outOff: 5000, want: ErrShortBuffer},
		{name: "outOff negative", spec: tcp4, outOff: -1, want: ErrShortBuffer},
		{name: "truncated in tcp header", spec: tcp4, edit: func(f []byte, h *Hdr) []byte { return f[:l4(f).l4+10] }, want: ErrMalformed},
		{name: "ip length past frame", spec: tcp4, edit: func(f []byte, h *Hdr) []byte { return f[:len(f)-1] }, want: ErrMalformed},
		{name: "truncated ethernet", spec: tcp4, edit: func(f []byte, h *Hdr) []byte { return f[:13] }, want: ErrMalformed},
		{name: "arp", spec: tcp4, edit: func(f []byte, h *Hdr) []byte { f[12], f[13] = 0x08, 0x06; return f }, want: ErrMalformed},
		{name: "ipv4 version 5", spec: tcp4, edit: func(f []byte, h *Hdr) []byte { f[14] = 0x55; return f }, want: ErrMalformed},
		{name: "ipv4 ihl 4", spec: tcp4, edit: func(f []byte, h *Hdr) []byte { f[14] = 0x44; return f }, want: ErrMalformed},
		{name: "ipv4 fragment", spec: tcp4, edit: func(f []byte, h *Hdr) []byte { f[14+6] |= 0x20; return f }, want: ErrUnsupported},
		{name: "ipv6 hop-by-hop", spec: tcp6, edit: func(f []byte, h *Hdr) []byte { f[14+6] = 0; return f }, want: ErrUnsupported},
		{name: "tcp data offset 4", spec: tcp4, edit: func(f []byte, h *Hdr) []byte { f[l4(f).l4+12] = 0x40; return f }, want: ErrMalformed},
		{name: "segment over 64K", spec: tcp4, edit: func(f []byte, h *Hdr) []byte {
			// BIG TCP (total length 0) with 70000 bytes of payload in one gso_size.
			f = append(f, make([]byte, 70000-5000)...)
			binary.BigEndian.PutUint16(f[14+2:], 0)
			h.GSOSize = 0xffff
			return f
		}, want: ErrGSOSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame, h := offloaded(t, buildFrame(t, tt.spec), tt.spec)
			if tt.edit != nil {
				frame = tt.edit(frame, &h)
			}
			nOut, outLen := 64, 2000
			if tt.nOut != 0 {
				nOut = max(0, tt.nOut)
			}
			if tt.outLen != 0 {
				outLen = tt.outLen
			}
			out, sizes := outBufs(nOut, outLen)
			n, err := Segment(frame, h, out, sizes, tt.outOff)
			if n != 0 || !errors.Is(err, tt.want) {
				t.Fatalf("Segment = %d, %v; want 0, %v", n, err, tt.want)
			}
		})
	}
}

func TestSegmentAllocs(t *testing.T) {
	s := segmentSpecs[0]
	frame, h := offloaded(t, buildFrame(t, s), s)
	out, sizes := outBufs(64, 1600)
	if a := testing.AllocsPerRun(100, func() {
		if _, err := Segment(frame, h, out, sizes, 0); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Segment: %v allocs per run, want 0", a)
	}
	// Errors are sentinels: no allocation on the failure path either.
	if a := testing.AllocsPerRun(100, func() { _, _ = Segment(frame[:20], h, out, sizes, 0) }); a != 0 {
		t.Errorf("Segment error: %v allocs per run, want 0", a)
	}
}

func BenchmarkSegment(b *testing.B) {
	for _, s := range []frameSpec{
		{name: "tcp4/64K/mss=1448", tcpOpts: true, payload: 45 * 1448, mss: 1448},
		{name: "tcp6/64K/mss=1428", v6: true, tcpOpts: true, payload: 45 * 1428, mss: 1428},
		{name: "udp4/64K/mss=1472", udp: true, payload: 44 * 1472, mss: 1472},
		{name: "tcp4/64K/mss=8948", tcpOpts: true, payload: 7 * 8948, mss: 8948},
	} {
		b.Run(s.name, func(b *testing.B) {
			frame, h := offloaded(b, buildFrame(b, s), s)
			out, sizes := outBufs(64, 9100)
			n, err := Segment(frame, h, out, sizes, 0)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Segment(frame, h, out, sizes, 0)
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(len(frame))*8*float64(b.N)/sec/1e9, "Gbit/s")
			b.ReportMetric(float64(n*b.N)/sec, "segs/s")
		})
	}
}

// Example-style check that the doc's promise "n segments of gso_size"
// holds for the 64 KB case the FACTS note describes.
func TestSegment64KCount(t *testing.T) {
	s := frameSpec{name: "64K", tcpOpts: true, payload: 65535 - 20 - 32, mss: 1448}
	frame, h := offloaded(t, buildFrame(t, s), s)
	out, sizes := outBufs(64, 1600)
	n, err := Segment(frame, h, out, sizes, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(n, sizes[0], sizes[n-1]); got != fmt.Sprint(46, 14+20+32+1448, 14+20+32+(65535-52)%1448) {
		t.Errorf("n, first, last size = %s", got)
	}
}
