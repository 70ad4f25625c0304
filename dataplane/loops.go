package dataplane

import (
	"errors"
	"net"
	"time"
)

// readLoop is the reader of a port or of the tunnel: read a batch, forward
// it, repeat, until it is closed or its device disappears. Frames from the
// tunnel go to local ports only (split horizon).
func (s *Switch) readLoop(p *port) {
	defer s.wg.Done()
	defer close(p.done)
	fromTunnel := p.tun != nil
	batch := 0
	if fromTunnel {
		batch = p.tun.BatchSize()
	} else {
		batch = p.dev.BatchSize()
	}
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	w := newWorker(s, p, batch)
	var lastLog time.Time
	for {
		var n int
		var err error
		if fromTunnel {
			n, err = p.tun.ReadBatch(w.bufs, w.sizes, w.meta, Headroom)
		} else {
			n, err = p.dev.ReadBatch(w.bufs, w.sizes, Headroom)
		}
		if n > 0 {
			w.forward(n, fromTunnel)
		}
		switch {
		case err == nil:
		case errors.Is(err, net.ErrClosed):
			return
		case errors.Is(err, ErrPortGone):
			p.up.Store(false)
			s.log.Warn("port device is gone; port is down", "port", p.cfg.Name, "err", err)
			s.fdb.PurgePort(p.id)
			return
		default:
			if time.Since(lastLog) > time.Second {
				s.log.Warn("read failed", "port", p.cfg.Name, "err", err)
				lastLog = time.Now()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
