package dataplane

import (
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/vxswitch/vxswitch/internal/busypoll"
)

// readLoop is the reader of one queue (lane) of a port or of the tunnel:
// read a batch, forward it, repeat, until it is closed or its device
// disappears. Frames from the tunnel go to local ports only (split
// horizon). Each reader has its own worker, so readers share nothing but
// the FDB (locked once per batch), the snapshot of the port table and the
// ports' atomic counters.
func (s *Switch) readLoop(p *port, lane int) {
	defer s.wg.Done()
	defer p.readers.Done()
	fromTunnel := p.tun != nil
	batch := 0
	var rq Queue
	var tq TunnelQueue
	if fromTunnel {
		batch = p.tun.BatchSize()
		tq = p.tunQueues[lane]
	} else {
		batch = p.dev.BatchSize()
		rq = p.queues[lane]
	}
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	w := newWorker(s, p, batch, lane)
	var lastLog time.Time
	// The queue's fd, for the busy-poll waker and the turns; nil when it
	// has none.
	var q any = rq
	if fromTunnel {
		q = tq
	}
	var pollConn syscall.RawConn
	if pc, ok := q.(PollConner); ok {
		pollConn = pc.PollConn()
	}
	// Busy polling: ready is the queue's ReadReady; with a waker, the
	// reader sleeps there while the switch is idle (see busypoll.Waker),
	// else in ReadBatch.
	var ready func() bool
	waker := s.waker
	if s.cfg.BusyPoll > 0 {
		if r, ok := q.(ReadReadier); ok {
			ready = r.ReadReady
		}
		if ready == nil || pollConn == nil || waker == nil || waker.Add(pollConn) != nil {
			waker = nil
		} else {
			defer waker.Remove(pollConn) // a gone device's fd stays readable
		}
	}
	// A reader that fills its batch may be flooded: after each full
	// batch it gives readers with frames waiting a turn. A reader without
	// an fd asks but is not seen.
	var turn *busypoll.Member
	if s.turns != nil {
		if m, err := s.turns.Add(pollConn, s.readerIDs.Add(1)); err == nil {
			turn = m
			defer turn.Remove()
		}
	}
	for {
		var n int
		var err error
		switch {
		case waker != nil:
			for {
				// The ticket first, then one look at the queue even when
				// the switch is idle: a reader kicked because its queue
				// closed must get to ReadBatch.
				t := waker.Ticket()
				if busypoll.Spin(ready, s.activity, s.cfg.BusyPoll) || ready() || !waker.Wait(t) {
					break
				}
			}
		case ready != nil:
			busypoll.Spin(ready, s.activity, s.cfg.BusyPoll)
		}
		if fromTunnel {
			n, err = tq.ReadBatch(w.bufs, w.sizes, w.meta, Headroom)
		} else {
			n, err = rq.ReadBatch(w.bufs, w.sizes, Headroom)
		}
		if n > 0 {
			w.forward(n, fromTunnel)
			if ready != nil {
				s.activity.Mark(s.cfg.BusyPoll)
			}
			if n >= batch && turn != nil && turn.OthersReady() {
				turn.Yield()
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, net.ErrClosed):
			return
		case errors.Is(err, ErrPortGone):
			// Every queue of the port sees it; the first one says so.
			if p.up.Swap(false) {
				s.log.Warn("port device is gone; port is down", "port", p.cfg.Name, "err", err)
			}
			s.fdb.PurgePort(p.id)
			return
		default:
			if time.Since(lastLog) > time.Second {
				s.log.Warn("read failed", "port", p.cfg.Name, "queue", lane, "err", err)
				lastLog = time.Now()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
