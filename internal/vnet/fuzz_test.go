package vnet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// fuzzOutOff is odd on purpose: nothing may assume aligned output.
const fuzzOutOff = 3

// FuzzSegment feeds Segment any frame and header. It must not panic, must
// leave its input alone, and when it succeeds every segment must be a
// well-formed frame (headers parse, IP and UDP lengths agree with the
// frame, IPv4 header and TCP/UDP checksums verify with the model), carry at
// most gso_size payload bytes after its headers, and the payloads together
// must be the input's payload, in order.
func FuzzSegment(f *testing.F) {
	out, sizes := outBufs(128, fuzzOutOff+66000)
	f.Fuzz(func(t *testing.T, frame []byte, flags, gsoType uint8, hdrLen, gsoSize, csumStart, csumOffset uint16) {
		h := Hdr{Flags: flags, GSOType: gsoType, HdrLen: hdrLen, GSOSize: gsoSize, CsumStart: csumStart, CsumOffset: csumOffset}
		before := bytes.Clone(frame)
		n, err := Segment(frame, h, out, sizes, fuzzOutOff)
		if !bytes.Equal(frame, before) {
			t.Fatal("Segment modified its input")
		}
		if err != nil {
			if n != 0 {
				t.Fatalf("Segment returned n = %d with error %v", n, err)
			}
			return
		}
		if n < 1 || n > len(out) {
			t.Fatalf("n = %d, out has %d", n, len(out))
		}
		if h.GSO() == GSONone {
			checkCopied(t, frame, h, out[0][fuzzOutOff:fuzzOutOff+sizes[0]])
			if n != 1 {
				t.Fatalf("GSONone gave %d segments", n)
			}
			return
		}
		in, err := parse(frame)
		if err != nil {
			t.Fatalf("Segment accepted a frame parse rejects: %v", err)
		}
		var payload []byte
		for i := range n {
			seg := out[i][fuzzOutOff : fuzzOutOff+sizes[i]]
			l, err := parse(seg)
			if err != nil {
				t.Fatalf("segment %d does not parse: %v", i, err)
			}
			if l.end != len(seg) || l.ip != in.ip || l.l4 != in.l4 || l.data != in.data || l.proto != in.proto {
				t.Fatalf("segment %d: layout %+v, input %+v, %d bytes", i, l, in, len(seg))
			}
			if len(seg) > l.data+int(h.GSOSize) {
				t.Fatalf("segment %d: %d bytes, more than headers %d + gso_size %d", i, len(seg), l.data, h.GSOSize)
			}
			if i < n-1 && len(seg) != l.data+int(h.GSOSize) {
				t.Fatalf("segment %d of %d is short: %d bytes", i, n, len(seg))
			}
			checkWellFormed(t, i, seg, l)
			payload = append(payload, seg[l.data:]...)
		}
		if !bytes.Equal(payload, frame[in.data:in.end]) {
			t.Fatalf("payload not conserved: %d bytes out, %d in", len(payload), in.end-in.data)
		}
	})
}

// checkWellFormed verifies a segment's length fields and checksums with
// the byte-pair model and a pseudo-header built byte by byte.
func checkWellFormed(t *testing.T, i int, seg []byte, l layout) {
	t.Helper()
	var ph []byte
	l4len := len(seg) - l.l4
	if l.v6 {
		if got := int(binary.BigEndian.Uint16(seg[l.ip+4:])); got != len(seg)-l.ip-40 {
			t.Fatalf("segment %d: IPv6 payload length %d, frame has %d", i, got, len(seg)-l.ip-40)
		}
		ph = append(ph, seg[l.ip+8:l.ip+40]...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(l4len))
		ph = append(ph, 0, 0, 0, l.proto)
	} else {
		if got := int(binary.BigEndian.Uint16(seg[l.ip+2:])); got != len(seg)-l.ip {
			t.Fatalf("segment %d: IPv4 total length %d, frame has %d", i, got, len(seg)-l.ip)
		}
		if refChecksum(seg[l.ip:l.l4], 0) != 0xffff {
			t.Fatalf("segment %d: IPv4 header checksum does not verify", i)
		}
		ph = append(ph, seg[l.ip+12:l.ip+20]...)
		ph = append(ph, 0, l.proto)
		ph = binary.BigEndian.AppendUint16(ph, uint16(l4len))
	}
	if l.proto == protoUDP {
		if got := int(binary.BigEndian.Uint16(seg[l.l4+4:])); got != l4len {
			t.Fatalf("segment %d: UDP length %d, want %d", i, got, l4len)
		}
	}
	if refChecksum(seg[l.l4:], refChecksum(ph, 0)) != 0xffff {
		t.Fatalf("segment %d: L4 checksum does not verify", i)
	}
}

// checkCopied verifies a GSONone copy: the frame, with the checksum
// finished if the header asked for it.
func checkCopied(t *testing.T, frame []byte, h Hdr, got []byte) {
	t.Helper()
	want := bytes.Clone(frame)
	if h.Flags&FlagNeedsCsum != 0 {
		finishModel(want, h)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GSONone copy differs:\ngot  % x\nwant % x", got, want)
	}
}

// finishModel is FinishChecksum written with the model; the caller has
// checked the offsets.
func finishModel(f []byte, h Hdr) {
	c := ^refChecksum(f[h.CsumStart:], 0)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(f[int(h.CsumStart)+int(h.CsumOffset):], c)
}

// FuzzFinishChecksum: no panics for any frame and offsets; bad offsets are
// an error and leave the frame alone; otherwise only the two checksum bytes
// change, to what the model computes, and with an even csum_offset the
// finished checksum verifies against the pseudo-header sum that was there.
func FuzzFinishChecksum(f *testing.F) {
	f.Fuzz(func(t *testing.T, frame []byte, flags, gsoType uint8, csumStart, csumOffset uint16) {
		h := Hdr{Flags: flags, GSOType: gsoType, CsumStart: csumStart, CsumOffset: csumOffset}
		got := bytes.Clone(frame)
		err := FinishChecksum(got, h)
		at := int(csumStart) + int(csumOffset)
		switch {
		case flags&FlagNeedsCsum == 0:
			if err != nil || !bytes.Equal(got, frame) {
				t.Fatalf("without NEEDS_CSUM: err %v, frame changed %v", err, !bytes.Equal(got, frame))
			}
			return
		case h.GSO() != GSONone:
			if err != ErrGSO {
				t.Fatalf("super-frame: err %v, want ErrGSO", err)
			}
		case at+2 > len(frame):
			if err != ErrBadCsumOffsets {
				t.Fatalf("field at %d in %d bytes: err %v, want ErrBadCsumOffsets", at, len(frame), err)
			}
		default:
			if err != nil {
				t.Fatalf("FinishChecksum: %v", err)
			}
			want := bytes.Clone(frame)
			finishModel(want, h)
			if !bytes.Equal(got, want) {
				t.Fatalf("got  % x\nwant % x", got, want)
			}
			if csumOffset%2 == 0 {
				pseudo := binary.BigEndian.Uint16(frame[at:])
				if s := add16(refChecksum(got[csumStart:], 0), pseudo); s != 0xffff && s != 0 {
					t.Fatalf("finished checksum does not verify: sum %#04x", s)
				}
			}
			return
		}
		if !bytes.Equal(got, frame) {
			t.Fatal("frame changed on error")
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz from the gopacket-built
// frames: VNET_WRITE_SEEDS=1 go test -run TestWriteFuzzSeeds.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("VNET_WRITE_SEEDS") == "" {
		t.Skip("set VNET_WRITE_SEEDS=1 to rewrite testdata/fuzz")
	}
	write := func(target, name string, vals ...any) {
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
			case uint8:
				fmt.Fprintf(&b, "byte(%s)\n", strconv.QuoteRune(rune(v)))
			case uint16:
				fmt.Fprintf(&b, "uint16(%d)\n", v)
			}
		}
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	seg := func(name string, frame []byte, h Hdr) {
		write("FuzzSegment", name, frame, h.Flags, h.GSOType, h.HdrLen, h.GSOSize, h.CsumStart, h.CsumOffset)
	}
	for i, s := range []frameSpec{
		{name: "tcp4-opts-psh", tcpOpts: true, psh: true, fin: true, payload: 3000, mss: 1000},
		{name: "tcp4-ipopts-vlan-cwr", ipOpts: true, tcpOpts: true, tags: 1, cwr: true, payload: 2500, mss: 536},
		{name: "tcp4-qinq-exact", tags: 2, payload: 2000, mss: 500},
		{name: "tcp6-opts", v6: true, tcpOpts: true, payload: 3000, mss: 1220},
		{name: "tcp6-vlan", v6: true, tags: 1, payload: 1500, mss: 700},
		{name: "udp4-uso", udp: true, payload: 3000, mss: 1000},
		{name: "udp6-uso-vlan", v6: true, udp: true, tags: 1, payload: 2000, mss: 600},
		{name: "tcp4-one-segment", payload: 100, mss: 1448},
	} {
		frame, h := offloaded(t, buildFrame(t, s), s)
		seg(fmt.Sprintf("seed%02d-%s", i, s.name), frame, h)
	}
	s := frameSpec{name: "big", tcpOpts: true, payload: 2000, mss: 1000}
	frame, h := offloaded(t, buildFrame(t, s), s)
	big := bytes.Clone(frame)
	binary.BigEndian.PutUint16(big[14+2:], 0)
	seg("seed20-tcp4-bigtcp", big, h)
	ufo := h
	ufo.GSOType = GSOUDP
	seg("seed21-ufo", frame, ufo)
	seg("seed22-truncated", frame[:60], h)
	s = frameSpec{name: "none", udp: true, payload: 99}
	frame, h = offloaded(t, buildFrame(t, s), s)
	seg("seed23-none-udp4", frame, h)

	fin := func(name string, frame []byte, h Hdr) {
		write("FuzzFinishChecksum", name, frame, h.Flags, h.GSOType, h.CsumStart, h.CsumOffset)
	}
	for i, s := range []frameSpec{
		{name: "tcp4", tcpOpts: true, payload: 200},
		{name: "tcp6-vlan-odd", v6: true, tags: 1, payload: 101},
		{name: "udp4", udp: true, payload: 64},
		{name: "udp6-qinq", v6: true, udp: true, tags: 2, payload: 33},
	} {
		frame, h := offloaded(t, buildFrame(t, s), s)
		fin(fmt.Sprintf("seed%02d-%s", i, s.name), frame, h)
	}
	fin("seed10-edge-end", []byte{0x12, 0x34, 0, 0}, Hdr{Flags: FlagNeedsCsum, CsumOffset: 2})
	fin("seed11-past-end", []byte{0x12, 0x34, 0, 0}, Hdr{Flags: FlagNeedsCsum, CsumStart: 3, CsumOffset: 0})
	fin("seed12-gso", make([]byte, 64), Hdr{Flags: FlagNeedsCsum, GSOType: GSOTCPv4})
}
