package dataplane

import (
	"net/netip"

	"github.com/vxswitch/vxswitch/fdb"
	"github.com/vxswitch/vxswitch/internal/vnet"
)

var zeroAddr netip.Addr

// bufSize is the size of every packet buffer: headroom plus the largest
// frame a port can hand us (64 KiB covers jumbo frames and, later,
// segmentation-offload super-frames).
const bufSize = Headroom + 65536

// maxSegments bounds the segments of one super-frame: 64 KB at an MSS
// of 1024 or more (any MTU of 1100 and up).
const maxSegments = 64

// pkt is the per-frame state of one batch.
type pkt struct {
	start, end int    // untagged frame at buf[start:end]
	vlan       uint16 //
	ok         bool   // accepted (classified) and still to forward
}

// txq is one egress port's share of a batch.
type txq struct {
	bufs  [][]byte
	bytes int
}

// worker is the state of one reader goroutine; nothing in it is shared, so
// the pipeline needs no locks beyond the FDB's read lock once per batch
// and the egress queues' transmit locks, which the other lanes of the
// same port never take (each lane writes to its own queue).
type worker struct {
	sw   *Switch
	in   *port
	lane int // the queue of in this worker reads; it writes to queue lane of every egress port

	bufs  [][]byte
	sizes []int
	pkts  []pkt
	meta  []TunnelMeta // tunnel reads

	learn []fdb.LearnReq

	// Egress staging, indexed by PortID; touched lists the ones in use.
	txqs    []txq
	touched []fdb.PortID
	tally   []tally // per PortID, flushed into the ports' counters per batch

	// Tunnel egress staging.
	tunBufs [][]byte
	tunOffs []int
	tunMeta []TunnelMeta

	// arena holds tagged copies for floods that need a frame both tagged
	// and untagged; arenaUsed counts the slots taken in this batch.
	arena     [][]byte
	arenaUsed int

	// segs holds the segments of TCP super-frames cut to an egress MTU;
	// segUsed counts the slots taken since the last write.
	segs     [][]byte
	segSizes []int
	segUsed  int

	t *portTable // the snapshot the current batch is forwarded with
}

func newWorker(sw *Switch, in *port, batch, lane int) *worker {
	w := &worker{
		sw:       sw,
		in:       in,
		lane:     lane,
		bufs:     make([][]byte, batch),
		sizes:    make([]int, batch),
		pkts:     make([]pkt, batch),
		meta:     make([]TunnelMeta, batch),
		learn:    make([]fdb.LearnReq, 0, batch),
		arena:    make([][]byte, batch),
		segs:     make([][]byte, maxSegments),
		segSizes: make([]int, maxSegments),
	}
	for i := range w.bufs {
		w.bufs[i] = make([]byte, bufSize)
		w.arena[i] = make([]byte, bufSize)
	}
	for i := range w.segs {
		w.segs[i] = make([]byte, bufSize)
	}
	w.tunBufs = make([][]byte, 0, batch)
	w.tunOffs = make([]int, 0, batch)
	w.tunMeta = make([]TunnelMeta, 0, batch)
	return w
}

// ensure grows the per-port staging to cover n port IDs. It allocates
// only when ports were added since the last batch.
func (w *worker) ensure(n int) {
	for len(w.txqs) < n {
		w.txqs = append(w.txqs, txq{bufs: make([][]byte, 0, len(w.bufs))})
		w.tally = append(w.tally, tally{})
	}
}

// forward runs the pipeline over the first n frames of w.bufs, read from
// w.in (or from the tunnel when fromTunnel): classify -> learn -> look up
// -> stage per egress port -> write.
func (w *worker) forward(n int, fromTunnel bool) {
	t := w.sw.table.Load()
	w.t = t
	w.ensure(len(t.byID))
	in := w.in
	inT := &w.tally[in.id]
	now := fdb.Now()
	tab := w.sw.fdb

	// Classify.
	for i := 0; i < n; i++ {
		p := &w.pkts[i]
		start, end := Headroom, Headroom+w.sizes[i]
		inT.rxPackets++
		inT.rxBytes += uint64(w.sizes[i])
		inT.dirty = true
		var vlan uint16
		var drop DropReason
		var ok bool
		if fromTunnel {
			start, vlan, drop, ok = w.classifyTunnel(t, i, start, end)
			if ok {
				// A kernel VTEP on a veth leaves inner TCP/UDP checksums
				// unfinished, and the UDP socket cannot tell us so.
				vnet.FixPartialChecksum(w.bufs[i][start:end])
			}
		} else {
			start, vlan, drop, ok = classify(&in.cfg, w.bufs[i], start, end)
		}
		if !ok {
			inT.drop(drop)
			p.ok = false
			continue
		}
		*p = pkt{start: start, end: end, vlan: vlan, ok: true}
	}

	// Learn and look up under one read lock. Frames come in trains of
	// one flow, so the last source checked and the last destination
	// looked up are remembered: the table cannot change under the lock,
	// and a source is asked to be learned once per batch.
	w.learn = w.learn[:0]
	var m lookupMemo
	tab.BeginRead()
	for i := 0; i < n; i++ {
		p := &w.pkts[i]
		if !p.ok {
			continue
		}
		f := frame(w.bufs[i][p.start:p.end])
		src := fdb.Key{VLAN: p.vlan, MAC: f.src()}
		d := fdb.Dest{Port: in.id}
		if fromTunnel {
			d.VTEP = w.meta[i].VTEP
		}
		if !m.haveSrc || src != m.src || d != m.srcDest {
			m.src, m.srcDest, m.haveSrc = src, d, true
			if tab.NeedsLearn(src, d, now) {
				w.learn = append(w.learn, fdb.LearnReq{Key: src, Dest: d})
			}
		}
		dst := f.dst()
		if isMulticast(&dst) {
			w.flood(t, i, fromTunnel)
			continue
		}
		if k := (fdb.Key{VLAN: p.vlan, MAC: dst}); !m.haveDst || k != m.dst {
			m.dest, m.found = tab.LookupLocked(k)
			m.dst, m.haveDst = k, true
		}
		dest, found := m.dest, m.found
		if !found || int(dest.Port) >= len(t.byID) || t.byID[dest.Port] == nil {
			w.flood(t, i, fromTunnel)
			continue
		}
		w.unicast(t, i, t.byID[dest.Port], dest, fromTunnel)
	}
	tab.EndRead()
	if len(w.learn) > 0 {
		tab.LearnBatch(w.learn, now)
	}

	w.flush(t)
}

// lookupMemo is what forward remembers of the batch's last frame: the
// source it checked for learning and the destination it looked up.
type lookupMemo struct {
	src, dst         fdb.Key
	srcDest, dest    fdb.Dest
	found            bool
	haveSrc, haveDst bool
}

// unicast stages frame i for one known destination.
func (w *worker) unicast(t *portTable, i int, out *port, dest fdb.Dest, fromTunnel bool) {
	p := &w.pkts[i]
	inT := &w.tally[w.in.id]
	switch {
	case out == w.in && !fromTunnel:
		inT.drop(DropSamePort)
	case out.tun != nil:
		if fromTunnel {
			inT.drop(DropSplitHorizon)
			return
		}
		tagged := out.tcfg.HasTrunkVNI && p.vlan != 0
		if tagged {
			p.start = pushTag(w.bufs[i], p.start, p.vlan)
		}
		w.stageTunnel(t, w.bufs[i][:p.end], p.start, p.vlan, dest.VTEP)
	case !out.cfg.Carries(p.vlan):
		inT.drop(DropVLANNotAllowed)
	default:
		tagged := egressTagged(&out.cfg, p.vlan)
		if tagged {
			p.start = pushTag(w.bufs[i], p.start, p.vlan)
		}
		w.stage(out, w.bufs[i][p.start:p.end], tagged)
	}
}

// flood stages frame i for every member port of its VLAN except the
// ingress port, and for the tunnel unless it came from there (split
// horizon). The frame stays untagged in place; tagged egress gets a copy,
// unless no egress needs it untagged, in which case the tag is pushed in
// place.
func (w *worker) flood(t *portTable, i int, fromTunnel bool) {
	p := &w.pkts[i]
	members := t.flood[p.vlan]
	toTunnel := !fromTunnel && t.tunnel != nil
	needUntagged, needTagged := false, false
	for _, out := range members {
		if out == w.in {
			continue
		}
		if egressTagged(&out.cfg, p.vlan) {
			needTagged = true
		} else {
			needUntagged = true
		}
	}
	if toTunnel {
		if t.tunnel.tcfg.HasTrunkVNI && p.vlan != 0 {
			needTagged = true
		} else {
			needUntagged = true
		}
	}
	buf := w.bufs[i]
	untaggedStart := p.start
	var tagBuf []byte
	tagStart := 0
	switch {
	case needTagged && !needUntagged:
		tagBuf, tagStart = buf, pushTag(buf, p.start, p.vlan)
	case needTagged:
		if w.arenaUsed == len(w.arena) {
			w.flush(t) // out of copy slots: send what is staged and reuse them
		}
		tagBuf = w.arena[w.arenaUsed]
		w.arenaUsed++
		tagStart = Headroom
		copyTagged(tagBuf, tagStart, buf[p.start:p.end], p.vlan)
	}
	tagEnd := tagStart + (p.end - p.start) + VLANTagLen

	for _, out := range members {
		if out == w.in {
			continue
		}
		if egressTagged(&out.cfg, p.vlan) {
			w.stage(out, tagBuf[tagStart:tagEnd], true)
		} else {
			w.stage(out, buf[untaggedStart:p.end], false)
		}
	}
	if toTunnel {
		if t.tunnel.tcfg.HasTrunkVNI && p.vlan != 0 {
			w.stageTunnel(t, tagBuf[:tagEnd], tagStart, p.vlan, zeroAddr)
		} else {
			w.stageTunnel(t, buf[:p.end], untaggedStart, p.vlan, zeroAddr)
		}
	}
}

// stage queues frame f for port out after the MTU check; a tag (tagged)
// does not count against the MTU.
func (w *worker) stage(out *port, f []byte, tagged bool) {
	ot := &w.tally[out.id]
	payload := len(f) - EthHdrLen
	if tagged {
		payload -= VLANTagLen
	}
	if payload > out.mtu() {
		if !w.stageSegments(out, f, tagged) {
			ot.drop(DropTooBig)
		}
		return
	}
	if !out.up.Load() {
		ot.drop(DropPortDown)
		return
	}
	q := &w.txqs[out.id]
	if len(q.bufs) == 0 {
		w.touched = append(w.touched, out.id)
	}
	q.bufs = append(q.bufs, f)
	q.bytes += len(f)
}

// stageSegments cuts a TCP frame larger than out's MTU into segments
// that fit, as TSO would have, and stages them. Such frames are
// super-frames a sender meant to be segmented (a kernel VTEP over a veth
// sends them whole inside one VXLAN datagram). Anything else over the MTU
// is dropped by the caller, never truncated.
func (w *worker) stageSegments(out *port, f []byte, tagged bool) bool {
	n, err := vnet.SegmentForMTU(f, out.mtu(), w.segs[w.segUsed:], w.segSizes[w.segUsed:], Headroom)
	if err == vnet.ErrTooManySegments && w.segUsed > 0 {
		w.writeStaged(w.t) // free the segment slots, then retry
		w.segUsed = 0
		n, err = vnet.SegmentForMTU(f, out.mtu(), w.segs, w.segSizes, Headroom)
	}
	if err != nil {
		return false
	}
	for k := w.segUsed; k < w.segUsed+n; k++ {
		w.stage(out, w.segs[k][Headroom:Headroom+w.segSizes[k]], tagged)
	}
	w.segUsed += n
	return true
}

// flush writes every staged batch, folds the tallies into the ports'
// counters and frees the copy slots for the next batch.
func (w *worker) flush(t *portTable) {
	w.writeStaged(t)
	w.arenaUsed = 0
	w.segUsed = 0
}

// writeStaged writes what is staged. It keeps the arena's tagged copies:
// a flood in progress may still stage the one it made.
func (w *worker) writeStaged(t *portTable) {
	for _, id := range w.touched {
		q := &w.txqs[id]
		out := t.byID[id]
		ot := &w.tally[id]
		if out != nil && out.queues != nil {
			sent, err := out.txq(w.lane).WriteBatch(q.bufs)
			ot.txPackets += uint64(sent)
			ot.dirty = true
			if sent == len(q.bufs) {
				ot.txBytes += uint64(q.bytes)
			} else {
				for _, b := range q.bufs[:sent] {
					ot.txBytes += uint64(len(b))
				}
				ot.drops[DropTxError] += uint64(len(q.bufs) - sent)
			}
			_ = err // counted above; a dead port is noticed by its reader
		}
		clear(q.bufs)
		q.bufs = q.bufs[:0]
		q.bytes = 0
	}
	w.touched = w.touched[:0]
	w.flushTunnel(t)
	for id := range w.tally {
		if id < len(t.byID) && t.byID[id] != nil {
			w.tally[id].flush(&t.byID[id].ctr)
		} else {
			w.tally[id] = tally{}
		}
	}
}

// txq is the queue lane writes to.
func (p *port) txq(lane int) Queue { return p.queues[lane%len(p.queues)] }

// tunq is the tunnel queue lane writes to.
func (p *port) tunq(lane int) TunnelQueue { return p.tunQueues[lane%len(p.tunQueues)] }

// mtu is the largest L2 payload the port sends; 0 means no limit set.
func (p *port) mtu() int {
	if p.cfg.MTU > 0 {
		return p.cfg.MTU
	}
	return 65535
}
