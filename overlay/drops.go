package overlay

import "sync/atomic"

// DropReason says why a packet (received) or a copy of a frame (sent) was
// dropped. Every drop is counted under exactly one reason. The names from
// String appear in stats output and metrics: append only, do not rename.
type DropReason uint8

const (
	// DropNone is not a drop: ParseHeader returns it for a good header.
	DropNone DropReason = iota

	// Receive side.

	// DropShort: UDP payload shorter than VXLAN header + Ethernet header.
	DropShort
	// DropNoIFlag: the I flag (valid VNI) is clear.
	DropNoIFlag
	// DropUnknownVNI: the bridge does not carry this VNI.
	DropUnknownVNI
	// DropUnknownSender: accept is "members" and the sender is no known VTEP.
	DropUnknownSender
	// DropTruncated: the datagram did not fit the caller's buffer.
	DropTruncated

	// Send side. Checks of the frame itself count once per frame; the
	// rest count per copy (a flooded frame is one copy per VTEP).

	// DropTxNoHeadroom: offs[i] < VXLANHdrLen, or the frame is shorter
	// than an Ethernet header.
	DropTxNoHeadroom
	// DropTxBadVNI: the VNI does not fit in 24 bits.
	DropTxBadVNI
	// DropTxBadDest: the destination VTEP is invalid or of the other
	// address family than the underlay.
	DropTxBadDest
	// DropTxWouldBlock: the socket stayed full after one bounded wait.
	DropTxWouldBlock
	// DropTxUnreachable: ENETUNREACH, EHOSTUNREACH, ECONNREFUSED, EACCES,
	// EPERM or EINVAL from the route look-up (blackhole, prohibit).
	DropTxUnreachable
	// DropTxTooBig: EMSGSIZE, the packet exceeds the path MTU with DF set.
	DropTxTooBig
	// DropTxError: any other send error (ENOBUFS, ...).
	DropTxError

	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	DropNone:          "none",
	DropShort:         "short",
	DropNoIFlag:       "no_i_flag",
	DropUnknownVNI:    "unknown_vni",
	DropUnknownSender: "unknown_sender",
	DropTruncated:     "truncated",
	DropTxNoHeadroom:  "tx_no_headroom",
	DropTxBadVNI:      "tx_bad_vni",
	DropTxBadDest:     "tx_bad_dest",
	DropTxWouldBlock:  "tx_would_block",
	DropTxUnreachable: "tx_unreachable",
	DropTxTooBig:      "tx_too_big",
	DropTxError:       "tx_error",
}

// String returns the snake_case name used in stats output.
func (r DropReason) String() string {
	if r < numDropReasons {
		return dropReasonNames[r]
	}
	return "unknown"
}

// DropReasons lists every real reason (DropNone excluded) in a fixed
// order, for stats output.
func DropReasons() []DropReason {
	rs := make([]DropReason, 0, numDropReasons-1)
	for r := DropNone + 1; r < numDropReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// counters are the endpoint's own counters, updated once per batch where
// possible (a local sum, then one atomic add).
type counters struct {
	rxPackets, rxBytes atomic.Uint64
	txPackets, txBytes atomic.Uint64
	drops              [numDropReasons]atomic.Uint64

	// Offload paths (see Stats).
	txGSOMsgs, txGSODgrams, txPlainDgrams atomic.Uint64
	rxGROMsgs, rxGRODgrams                atomic.Uint64
	gsoOff                                atomic.Bool
	groOn                                 bool // set before the endpoint is shared
}

// Stats is a snapshot of an endpoint's counters. Bytes count inner frames
// (without the VXLAN header). TxPackets counts copies: a frame flooded to
// three VTEPs counts three.
type Stats struct {
	RxPackets, RxBytes uint64
	TxPackets, TxBytes uint64
	// Drops is indexed by reason name (String), every reason present.
	Drops map[string]uint64
	// VTEPs holds each known VTEP with its own transmit counters.
	VTEPs []VTEPInfo

	// Offload paths. TxGSOMessages UDP_SEGMENT messages carried
	// TxGSODatagrams datagrams; TxPlainDatagrams went one per message.
	// RxGROMessages received messages held several coalesced datagrams,
	// RxGRODatagrams in all. Datagrams include flood copies; drops are
	// not in these.
	TxGSOMessages, TxGSODatagrams, TxPlainDatagrams uint64
	RxGROMessages, RxGRODatagrams                   uint64
	// GSO is false once UDP_SEGMENT failed where plain sends work (the
	// endpoint then sends one datagram per message); GRO is whether the
	// receive socket has UDP_GRO on.
	GSO, GRO bool
}

func (c *counters) drop(r DropReason, n uint64) {
	if n != 0 {
		c.drops[r].Add(n)
	}
}
