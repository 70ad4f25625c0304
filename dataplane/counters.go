package dataplane

import "sync/atomic"

// DropReason names why a frame was dropped. Append only: the names are
// shown by `vxswitch stats` and exported as metrics labels.
type DropReason uint8

const (
	DropShort          DropReason = iota // shorter than an Ethernet header
	DropBadVLANHeader                    // 802.1Q TPID with a truncated tag
	DropVLANNotAllowed                   // VLAN not carried by the ingress port
	DropTooBig                           // over the egress MTU: dropped, never truncated
	DropSamePort                         // destination sits behind the ingress port
	DropSplitHorizon                     // from the tunnel, destination behind the tunnel
	DropNoVNI                            // VLAN has no VNI on the tunnel
	DropTxError                          // the device refused the frame
	DropPortDown                         // egress port is down
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"short", "bad_vlan_header", "vlan_not_allowed", "too_big", "same_port",
	"split_horizon", "no_vni", "tx_error", "port_down",
}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// PortCounters is a snapshot of one port's counters.
type PortCounters struct {
	RxPackets uint64            `json:"rx_packets"`
	RxBytes   uint64            `json:"rx_bytes"`
	TxPackets uint64            `json:"tx_packets"`
	TxBytes   uint64            `json:"tx_bytes"`
	Drops     map[string]uint64 `json:"drops"`
}

// counters are updated once per batch from a worker's local tallies, so
// the per-packet cost is a plain increment.
type counters struct {
	rxPackets, rxBytes, txPackets, txBytes atomic.Uint64
	drops                                  [numDropReasons]atomic.Uint64
}

func (c *counters) snapshot() PortCounters {
	pc := PortCounters{
		RxPackets: c.rxPackets.Load(),
		RxBytes:   c.rxBytes.Load(),
		TxPackets: c.txPackets.Load(),
		TxBytes:   c.txBytes.Load(),
		Drops:     make(map[string]uint64, numDropReasons),
	}
	for i := range c.drops {
		pc.Drops[DropReason(i).String()] = c.drops[i].Load()
	}
	return pc
}

// tally is a worker-local, non-atomic copy of counters for one port,
// flushed into the shared counters once per batch.
type tally struct {
	rxPackets, rxBytes, txPackets, txBytes uint64
	drops                                  [numDropReasons]uint64
	dirty                                  bool
}

func (t *tally) drop(r DropReason) { t.drops[r]++; t.dirty = true }

func (t *tally) flush(c *counters) {
	if !t.dirty {
		return
	}
	if t.rxPackets != 0 {
		c.rxPackets.Add(t.rxPackets)
		c.rxBytes.Add(t.rxBytes)
	}
	if t.txPackets != 0 {
		c.txPackets.Add(t.txPackets)
		c.txBytes.Add(t.txBytes)
	}
	for i, n := range t.drops {
		if n != 0 {
			c.drops[i].Add(n)
		}
	}
	*t = tally{}
}
