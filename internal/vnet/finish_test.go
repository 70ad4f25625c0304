package vnet

import (
	"bytes"
	"errors"
	"testing"
)

func TestFinishChecksum(t *testing.T) {
	for _, s := range []frameSpec{
		{name: "tcp4/opts", tcpOpts: true, payload: 1000},
		{name: "tcp4/ipopts/vlan/odd", ipOpts: true, tags: 1, payload: 1001},
		{name: "tcp4/empty", payload: 0},
		{name: "tcp6/qinq", v6: true, tags: 2, tcpOpts: true, payload: 1440},
		{name: "tcp6/odd", v6: true, payload: 3},
		{name: "udp4", udp: true, payload: 1472},
		{name: "udp4/one-byte", udp: true, payload: 1},
		{name: "udp6/vlan/odd", v6: true, udp: true, tags: 1, payload: 8999},
	} {
		t.Run(s.name, func(t *testing.T) {
			orig := buildFrame(t, s)
			frame, h := offloaded(t, orig, s)
			if bytes.Equal(frame, orig) {
				t.Fatal("offloaded frame equals the original; the test would prove nothing")
			}
			if err := FinishChecksum(frame, h); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(frame, orig) {
				t.Fatalf("finished frame differs from the one gopacket built:\ngot  % x\nwant % x", frame[h.CsumStart:h.CsumStart+20], orig[h.CsumStart:h.CsumStart+20])
			}
			decode(t, "finished", frame)
		})
	}
}

func TestFinishChecksumEdges(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		h     Hdr
		want  []byte // nil: unchanged
		err   error
	}{
		{
			name:  "no NEEDS_CSUM: untouched",
			frame: []byte{1, 2, 3, 4},
			h:     Hdr{Flags: FlagDataValid, CsumStart: 100},
		},
		{
			name:  "sum 0xffff stored as 0xffff, not 0",
			frame: []byte{0x00, 0x00, 0xff, 0xff},
			h:     Hdr{Flags: FlagNeedsCsum},
			want:  []byte{0xff, 0xff, 0xff, 0xff},
		},
		{
			name:  "field at the very end",
			frame: []byte{0x12, 0x34, 0x00, 0x00},
			h:     Hdr{Flags: FlagNeedsCsum, CsumOffset: 2},
			want:  []byte{0x12, 0x34, 0xed, 0xcb},
		},
		{
			name:  "odd length region",
			frame: []byte{0xaa, 0x00, 0x00, 0x01},
			h:     Hdr{Flags: FlagNeedsCsum, CsumStart: 1},
			want:  []byte{0xaa, 0xfe, 0xff, 0x01}, // sum 0x0001 -> ^ = 0xfffe
		},
		{
			name:  "field one byte past the end",
			frame: []byte{0, 0, 0, 0},
			h:     Hdr{Flags: FlagNeedsCsum, CsumStart: 1, CsumOffset: 2},
			err:   ErrBadCsumOffsets,
		},
		{
			name:  "csum_start past the end",
			frame: []byte{0, 0, 0, 0},
			h:     Hdr{Flags: FlagNeedsCsum, CsumStart: 0xffff, CsumOffset: 0xffff},
			err:   ErrBadCsumOffsets,
		},
		{
			name:  "empty frame",
			frame: nil,
			h:     Hdr{Flags: FlagNeedsCsum},
			err:   ErrBadCsumOffsets,
		},
		{
			name:  "super-frame",
			frame: make([]byte, 100),
			h:     Hdr{Flags: FlagNeedsCsum, GSOType: GSOTCPv4, GSOSize: 10},
			err:   ErrGSO,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := bytes.Clone(tt.frame)
			err := FinishChecksum(f, tt.h)
			if !errors.Is(err, tt.err) {
				t.Fatalf("FinishChecksum = %v, want %v", err, tt.err)
			}
			want := tt.want
			if want == nil {
				want = tt.frame
			}
			if !bytes.Equal(f, want) {
				t.Fatalf("frame = % x, want % x", f, want)
			}
		})
	}
}

func TestFinishChecksumAllocs(t *testing.T) {
	s := frameSpec{name: "tcp4", tcpOpts: true, payload: 1448}
	frame, h := offloaded(t, buildFrame(t, s), s)
	if a := testing.AllocsPerRun(100, func() {
		if err := FinishChecksum(frame, h); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("FinishChecksum: %v allocs per run, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() { _ = FinishChecksum(frame[:10], h) }); a != 0 {
		t.Errorf("FinishChecksum error: %v allocs per run, want 0", a)
	}
}

func BenchmarkFinishChecksum(b *testing.B) {
	for _, s := range []frameSpec{
		{name: "tcp4/1500", tcpOpts: true, payload: 1448},
		{name: "tcp4/9000", tcpOpts: true, payload: 8948},
	} {
		b.Run(s.name, func(b *testing.B) {
			frame, h := offloaded(b, buildFrame(b, s), s)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				_ = FinishChecksum(frame, h)
			}
		})
	}
}
