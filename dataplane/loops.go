package dataplane

import (
	"errors"
	"net"
	"time"
)

// portLoop is a port's reader: read a batch, forward it, repeat, until the
// port is closed or its device disappears.
func (s *Switch) portLoop(p *port) {
	defer s.wg.Done()
	defer close(p.done)
	batch := p.dev.BatchSize()
	if batch <= 0 {
		batch = 64
	}
	w := newWorker(s, p, batch)
	var lastLog time.Time
	for {
		n, err := p.dev.ReadBatch(w.bufs, w.sizes, Headroom)
		if n > 0 {
			w.forward(n, false)
		}
		if err == nil {
			continue
		}
		switch {
		case errors.Is(err, net.ErrClosed):
			return
		case errors.Is(err, ErrPortGone):
			p.up.Store(false)
			s.log.Warn("port device is gone; port is down", "port", p.cfg.Name, "err", err)
			s.fdb.PurgePort(p.id)
			return
		default:
			if time.Since(lastLog) > time.Second {
				s.log.Warn("port read failed", "port", p.cfg.Name, "err", err)
				lastLog = time.Now()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// tunnelLoop reads decapsulated frames from the tunnel and forwards them
// to local ports only (split horizon).
func (s *Switch) tunnelLoop(p *port) {
	defer s.wg.Done()
	defer close(p.done)
	batch := p.tun.BatchSize()
	if batch <= 0 {
		batch = 64
	}
	w := newWorker(s, p, batch)
	var lastLog time.Time
	for {
		n, err := p.tun.ReadBatch(w.bufs, w.sizes, w.meta, Headroom)
		if n > 0 {
			w.forward(n, true)
		}
		if err == nil {
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if time.Since(lastLog) > time.Second {
			s.log.Warn("tunnel read failed", "err", err)
			lastLog = time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
}
