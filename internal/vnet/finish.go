package vnet

import "encoding/binary"

// FinishChecksum completes the checksum of a frame the kernel marked
// CHECKSUM_PARTIAL (h.Flags has FlagNeedsCsum): it sums the frame from
// h.CsumStart to the end, which takes in the pseudo-header sum the kernel
// left in the checksum field at h.CsumStart+h.CsumOffset, and stores the
// complement there. A result of 0 is stored as 0xffff, as the kernel's
// skb_checksum_help does, since 0 means "no checksum" in UDP over IPv4.
//
// The frame is changed in place. Without FlagNeedsCsum it does nothing.
// It returns ErrGSO for a super-frame (use Segment, which computes every
// checksum) and ErrBadCsumOffsets if the checksum field is not inside the
// frame; it never panics. It does not allocate.
func FinishChecksum(frame []byte, h Hdr) error {
	if h.Flags&FlagNeedsCsum == 0 {
		return nil
	}
	if h.GSO() != GSONone {
		return ErrGSO
	}
	start := int(h.CsumStart)
	at := start + int(h.CsumOffset)
	if at+2 > len(frame) {
		return ErrBadCsumOffsets
	}
	c := ^checksum(frame[start:], 0)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(frame[at:], c)
	return nil
}
