package overlay

import (
	"net/netip"

	"github.com/vxswitch/vxswitch/dataplane"
)

var _ dataplane.Tunnel = (*Endpoint)(nil)

// The VXLAN header is all the endpoint writes in front of a frame, so the
// pipeline's headroom must be exactly its size: these fail to compile when
// dataplane.TunnelHeadroom and VXLANHdrLen differ.
var (
	_ [dataplane.TunnelHeadroom - VXLANHdrLen]struct{}
	_ [VXLANHdrLen - dataplane.TunnelHeadroom]struct{}
)

// An Endpoint is a VXLAN tunnel endpoint (VTEP): one UDP socket that
// receives and decapsulates (one per queue with Config.Queues), a few
// that encapsulate and send (that many per queue), and the table of
// remote VTEPs and flood lists. It implements dataplane.Tunnel and
// dataplane.MultiQueueTunnel.
//
// ReadBatch is meant for one goroutine (per queue); WriteBatch may be
// called from several (it takes one lock per batch, per queue); the VTEP
// table methods may be called at any time from the control plane and
// take effect for the next batch.
type Endpoint struct {
	cfg   Config
	table *vtepTable
	ctr   counters
	sys   endpointSys // platform part: sockets and batch scratch
}

// AddVTEP adds the remote VTEP addr, named by source (SourceStatic,
// SourceGossip), or replaces its port and VNIs when source already named
// it. port 0 means the endpoint's port. A static VTEP with no vnis serves
// every VNI of the bridge, also those added later; any other VTEP serves
// exactly the VNIs given that the bridge carries.
func (e *Endpoint) AddVTEP(addr netip.Addr, port uint16, vnis []uint32, source string) {
	e.table.add(addr, port, vnis, source)
	e.cfg.Logger.Info("vtep added", "vtep", addr, "port", port, "source", source, "vnis", vnis)
}

// RemoveVTEP forgets addr as named by source. Unless another source still
// names it, it leaves every flood list at once: frames in a batch being
// sent may still reach it, later batches do not. Its FDB entries are the
// caller's to purge.
func (e *Endpoint) RemoveVTEP(addr netip.Addr, source string) {
	e.table.remove(addr, source)
	e.cfg.Logger.Info("vtep removed", "vtep", addr, "source", source)
}

// SetVNIs sets the VNIs this bridge carries. Packets for any other VNI
// are dropped (unknown_vni); static VTEPs follow the new set.
func (e *Endpoint) SetVNIs(vnis []uint32) {
	e.table.setVNIs(vnis)
}

// VTEPs returns the remote VTEPs, ordered by address, with their transmit
// counters. It allocates.
func (e *Endpoint) VTEPs() []VTEPInfo { return e.table.vteps() }

// IsMember reports whether addr is a known remote VTEP (from any source).
func (e *Endpoint) IsMember(addr netip.Addr) bool { return e.table.isMember(addr) }

// BatchSize is the most frames ReadBatch returns at once (Config.BatchSize).
func (e *Endpoint) BatchSize() int { return e.cfg.BatchSize }

// Stats returns the endpoint's counters. It allocates.
func (e *Endpoint) Stats() Stats {
	s := Stats{
		RxPackets: e.ctr.rxPackets.Load(),
		RxBytes:   e.ctr.rxBytes.Load(),
		TxPackets: e.ctr.txPackets.Load(),
		TxBytes:   e.ctr.txBytes.Load(),
		Drops:     make(map[string]uint64, numDropReasons),
		VTEPs:     e.table.vteps(),

		TxGSOMessages:    e.ctr.txGSOMsgs.Load(),
		TxGSODatagrams:   e.ctr.txGSODgrams.Load(),
		TxPlainDatagrams: e.ctr.txPlainDgrams.Load(),
		RxGROMessages:    e.ctr.rxGROMsgs.Load(),
		RxGRODatagrams:   e.ctr.rxGRODgrams.Load(),
		GSO:              !e.ctr.gsoOff.Load(),
		GRO:              e.ctr.groOn,
	}
	for _, r := range DropReasons() {
		s.Drops[r.String()] = e.ctr.drops[r].Load()
	}
	return s
}
