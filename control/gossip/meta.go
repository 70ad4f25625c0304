package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/hashicorp/memberlist"
)

// Meta is what a member tells the others about its tunnel endpoint. It
// travels in memberlist's node metadata, which holds at most
// memberlist.MetaMaxSize (512) bytes.
type Meta struct {
	VTEP   netip.Addr // underlay address VXLAN packets are sent to
	Port   uint16     // VXLAN UDP destination port, usually 4789
	Bridge string     // bridge name, for show and members; at most MaxBridgeLen bytes
	VNIs   []uint32   // VNIs the bridge serves; each < 1<<24; at most MaxVNIs
}

// Limits of Meta. They are chosen so that the largest Meta (IPv6 VTEP,
// MaxBridgeLen-byte name, MaxVNIs VNIs, flags) takes 451 bytes and leaves 61
// of memberlist's 512 for fields a later release adds.
const (
	MaxVNIs      = 128
	MaxBridgeLen = 32
)

// Wire layout of the metadata (integers big-endian):
//
//	version(1) | field*
//	field: type(1) | length(2) | value(length)
//
// A decoder skips fields of a type it does not know, so a release can add
// fields without bumping metaVersion; the version changes only when the
// layout above or the meaning of an existing field changes.
const (
	metaVersion  = 1
	metaFieldHdr = 3 // type(1) + length(2)
)

// Field types. Append only: these values are on the wire.
const (
	metaFieldVTEP   = 1 // 4 (IPv4) or 16 (IPv6) bytes
	metaFieldPort   = 2 // 2 bytes
	metaFieldBridge = 3 // 0..MaxBridgeLen bytes
	metaFieldVNIs   = 4 // 3 bytes per VNI, ascending, no duplicates
	metaFieldFlags  = 5 // 1 byte of metaFlag bits; absent means 0
)

// metaFlag bits of metaFieldFlags. Append only: on the wire.
const (
	// flagLeaving is set by a member just before it leaves, so the others
	// can tell a graceful leave from a failure: memberlist v0.7.0 does not
	// tell an EventDelegate (hashicorp/memberlist#293).
	flagLeaving byte = 1 << 0
)

const maxMetaLen = 1 + metaFieldHdr + 16 + metaFieldHdr + 2 +
	metaFieldHdr + MaxBridgeLen + metaFieldHdr + 3*MaxVNIs + metaFieldHdr + 1

// The largest Meta must fit memberlist's limit (this fails to compile otherwise).
var _ [memberlist.MetaMaxSize - maxMetaLen]struct{}

var (
	// ErrTooManyVNIs is returned (wrapped) when a Meta has more than MaxVNIs VNIs.
	ErrTooManyVNIs = errors.New("too many VNIs")
	// ErrMetaTruncated is returned (wrapped) by DecodeMeta when a field
	// runs past the end of the input.
	ErrMetaTruncated = errors.New("truncated")
)

// Equal reports whether m and o carry the same values.
func (m Meta) Equal(o Meta) bool {
	return m.VTEP == o.VTEP && m.Port == o.Port && m.Bridge == o.Bridge &&
		slices.Equal(m.VNIs, o.VNIs)
}

// EncodeMeta returns the wire form of m. VNIs are sent sorted and without
// duplicates; m is not modified. It fails when m has no usable VTEP address
// or port, or exceeds MaxBridgeLen or MaxVNIs.
// This function allocates the returned slice.
func EncodeMeta(m Meta) ([]byte, error) {
	return encodeMeta(m, 0)
}

func encodeMeta(m Meta, flags byte) ([]byte, error) {
	vnis := canonicalVNIs(m.VNIs)
	if err := validateMeta(m, vnis); err != nil {
		return nil, err
	}
	b := make([]byte, 0, maxMetaLen)
	b = append(b, metaVersion)
	if m.VTEP.Is4() {
		a := m.VTEP.As4()
		b = appendField(b, metaFieldVTEP, a[:])
	} else {
		a := m.VTEP.As16()
		b = appendField(b, metaFieldVTEP, a[:])
	}
	b = appendField(b, metaFieldPort, binary.BigEndian.AppendUint16(nil, m.Port))
	if m.Bridge != "" {
		b = appendField(b, metaFieldBridge, []byte(m.Bridge))
	}
	if len(vnis) > 0 {
		v := make([]byte, 0, 3*len(vnis))
		for _, vni := range vnis {
			v = append(v, byte(vni>>16), byte(vni>>8), byte(vni))
		}
		b = appendField(b, metaFieldVNIs, v)
	}
	if flags != 0 {
		b = appendField(b, metaFieldFlags, []byte{flags})
	}
	return b, nil
}

func appendField(b []byte, typ byte, v []byte) []byte {
	b = append(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// canonicalVNIs returns vnis sorted and without duplicates, in a new slice.
func canonicalVNIs(vnis []uint32) []uint32 {
	if len(vnis) == 0 {
		return nil
	}
	c := slices.Clone(vnis)
	slices.Sort(c)
	return slices.Compact(c)
}

// validateMeta checks m with its VNIs already canonical. Encoding and
// decoding share it, so whatever DecodeMeta accepts EncodeMeta can send.
func validateMeta(m Meta, vnis []uint32) error {
	switch {
	case !m.VTEP.IsValid():
		return errors.New("gossip meta: no VTEP address")
	case m.VTEP.Zone() != "":
		return fmt.Errorf("gossip meta: VTEP address %s: a zone cannot be sent to other hosts", m.VTEP)
	case m.VTEP.IsUnspecified():
		return fmt.Errorf("gossip meta: VTEP address %s is unspecified; other hosts need a real address", m.VTEP)
	case m.Port == 0:
		return errors.New("gossip meta: VXLAN port 0")
	case len(m.Bridge) > MaxBridgeLen:
		return fmt.Errorf("gossip meta: bridge name %q is %d bytes, at most %d fit", m.Bridge, len(m.Bridge), MaxBridgeLen)
	case len(vnis) > MaxVNIs:
		return fmt.Errorf("gossip meta: %w: %d VNIs, at most %d fit in memberlist's %d-byte node metadata",
			ErrTooManyVNIs, len(vnis), MaxVNIs, memberlist.MetaMaxSize)
	}
	if len(vnis) > 0 && vnis[len(vnis)-1] >= 1<<24 { // sorted: the last is the largest
		return fmt.Errorf("gossip meta: VNI %d does not fit in 24 bits", vnis[len(vnis)-1])
	}
	return nil
}

// DecodeMeta parses metadata written by EncodeMeta, by this release or a
// later one: fields of unknown type are skipped. A field that runs past the
// end of b is an error wrapping ErrMetaTruncated, as is anything DecodeMeta
// could not send back (see EncodeMeta). It never panics.
func DecodeMeta(b []byte) (Meta, error) {
	m, _, err := decodeMeta(b)
	return m, err
}

func decodeMeta(b []byte) (Meta, byte, error) {
	var (
		m     Meta
		flags byte
		seen  uint64 // bit per known field type, to catch duplicates
	)
	if len(b) == 0 {
		return Meta{}, 0, errors.New("gossip meta: empty")
	}
	if b[0] != metaVersion {
		return Meta{}, 0, fmt.Errorf("gossip meta: unsupported version %d (this release reads %d)", b[0], metaVersion)
	}
	for off := 1; off < len(b); {
		if len(b)-off < metaFieldHdr {
			return Meta{}, 0, fmt.Errorf("gossip meta: %w: field header at offset %d needs %d bytes, %d left",
				ErrMetaTruncated, off, metaFieldHdr, len(b)-off)
		}
		typ := b[off]
		n := int(binary.BigEndian.Uint16(b[off+1:]))
		off += metaFieldHdr
		if len(b)-off < n {
			return Meta{}, 0, fmt.Errorf("gossip meta: %w: field %d at offset %d needs %d bytes, %d left",
				ErrMetaTruncated, typ, off-metaFieldHdr, n, len(b)-off)
		}
		v := b[off : off+n]
		off += n
		if typ > metaFieldFlags || typ == 0 {
			continue // a later release's field
		}
		if seen&(1<<typ) != 0 {
			return Meta{}, 0, fmt.Errorf("gossip meta: field %d appears twice", typ)
		}
		seen |= 1 << typ
		switch typ {
		case metaFieldVTEP:
			a, ok := netip.AddrFromSlice(v)
			if !ok {
				return Meta{}, 0, fmt.Errorf("gossip meta: VTEP field is %d bytes, want 4 or 16", n)
			}
			m.VTEP = a
		case metaFieldPort:
			if n != 2 {
				return Meta{}, 0, fmt.Errorf("gossip meta: port field is %d bytes, want 2", n)
			}
			m.Port = binary.BigEndian.Uint16(v)
		case metaFieldBridge:
			m.Bridge = string(v)
		case metaFieldVNIs:
			if n%3 != 0 {
				return Meta{}, 0, fmt.Errorf("gossip meta: VNI field is %d bytes, not a multiple of 3", n)
			}
			if n == 0 {
				break
			}
			m.VNIs = make([]uint32, 0, n/3)
			for i := 0; i < n; i += 3 {
				m.VNIs = append(m.VNIs, uint32(v[i])<<16|uint32(v[i+1])<<8|uint32(v[i+2]))
			}
			// Senders sort; a sender that does not still means the same set.
			slices.Sort(m.VNIs)
			m.VNIs = slices.Compact(m.VNIs)
		case metaFieldFlags:
			if n != 1 {
				return Meta{}, 0, fmt.Errorf("gossip meta: flags field is %d bytes, want 1", n)
			}
			flags = v[0]
		}
	}
	if seen&(1<<metaFieldVTEP) == 0 {
		return Meta{}, 0, errors.New("gossip meta: no VTEP field")
	}
	if seen&(1<<metaFieldPort) == 0 {
		return Meta{}, 0, errors.New("gossip meta: no port field")
	}
	if err := validateMeta(m, m.VNIs); err != nil {
		return Meta{}, 0, err
	}
	return m, flags, nil
}
