package dataplane

import "net/netip"

// classifyTunnel gives the VLAN of decapsulated frame i. With a trunk VNI
// the inner 802.1Q tag says it (untagged is VLAN 0), as on a trunk port;
// otherwise the VNI does, and the inner frame must be untagged (RFC 7348
// §6.1: decapsulated frames with an inner tag are discarded).
func (w *worker) classifyTunnel(t *portTable, i, start, end int) (int, uint16, DropReason, bool) {
	tp := w.in
	if tp.tcfg.HasTrunkVNI {
		if w.meta[i].VNI != tp.tcfg.TrunkVNI {
			return start, 0, DropNoVNI, false
		}
		return classify(&tp.cfg, w.bufs[i], start, end)
	}
	if end-start < EthHdrLen {
		return start, 0, DropShort, false
	}
	vlan, ok := t.vniVLAN[w.meta[i].VNI]
	if !ok {
		return start, 0, DropNoVNI, false
	}
	if frame(w.bufs[i][start:end]).tagged() {
		return start, 0, DropVLANNotAllowed, false
	}
	return start, vlan, 0, true
}

// stageTunnel queues the frame buf[start:] for the tunnel with the VNI of
// vlan; vtep is the destination, or the zero Addr to flood.
func (w *worker) stageTunnel(t *portTable, buf []byte, start int, vlan uint16, vtep netip.Addr) {
	tp := t.tunnel
	vni := tp.tcfg.TrunkVNI
	if !tp.tcfg.HasTrunkVNI {
		if !t.vlanHasVNI.Has(vlan) {
			w.tally[tp.id].drop(DropNoVNI)
			return
		}
		vni = t.vlanVNI[vlan]
	}
	w.tunBufs = append(w.tunBufs, buf)
	w.tunOffs = append(w.tunOffs, start)
	w.tunMeta = append(w.tunMeta, TunnelMeta{VNI: vni, VTEP: vtep})
}

// flushTunnel sends the staged tunnel frames in one batch.
func (w *worker) flushTunnel(t *portTable) {
	if len(w.tunBufs) == 0 {
		return
	}
	tp := t.tunnel
	if tp != nil {
		ot := &w.tally[tp.id]
		sent, _ := tp.tunq(w.lane).WriteBatch(w.tunBufs, w.tunOffs, w.tunMeta)
		ot.txPackets += uint64(sent)
		for k, b := range w.tunBufs[:sent] {
			ot.txBytes += uint64(len(b) - w.tunOffs[k])
		}
		if sent < len(w.tunBufs) {
			ot.drops[DropTxError] += uint64(len(w.tunBufs) - sent)
		}
		ot.dirty = true
	}
	clear(w.tunBufs)
	w.tunBufs = w.tunBufs[:0]
	w.tunOffs = w.tunOffs[:0]
	w.tunMeta = w.tunMeta[:0]
}
