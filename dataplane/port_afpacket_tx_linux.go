package dataplane

import (
	"errors"
	"net"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/vnet"
)

// txStage is the send side of a system port: the messages staged for the
// next sendmmsg, each a virtio_net_hdr and a frame, and how many of the
// caller's frames each one carries (more than one when consecutive TCP
// segments were merged into one GSO frame).
type txStage struct {
	co   *vnet.Coalescer
	hdrs [][vnet.HdrLen]byte
	segs []int
	k    int // messages staged

	sent int  // frames the kernel took in this WriteBatch
	down bool // ENETDOWN seen: drop the rest of the batch
}

func newTxStage(batch int) txStage {
	return txStage{
		co:   vnet.NewCoalescer(),
		hdrs: make([][vnet.HdrLen]byte, batch),
		segs: make([]int, batch),
	}
}

// WriteBatch sends the frames in order with sendmmsg, at most BatchSize()
// messages per call, waiting for the socket to drain when its buffer is
// full. Consecutive TCP segments of one flow go out as one GSO frame
// (vnet.Coalescer): the kernel, or the peer's stack behind a veth, then
// handles one packet per up to 64 KiB. A frame the kernel refuses is
// skipped and counted (TxError); when the device queue is full (ENOBUFS)
// or the device is down, the rest is dropped and counted rather than tried
// frame by frame. It returns the number of frames the kernel took, and
// ErrPortGone once the device is deleted.
func (p *afpacketPort) WriteBatch(bufs [][]byte) (int, error) {
	p.txMu.Lock()
	defer p.txMu.Unlock()
	w := &p.txw
	w.sent, w.down = 0, false
	for i, f := range bufs {
		if !w.co.Append(f) {
			if err := p.stageRun(); err != nil || w.down {
				return p.abandon(len(bufs)-i, err)
			}
			w.co.Append(f)
		}
	}
	if err := p.stageRun(); err != nil || w.down {
		return p.abandon(0, err)
	}
	if err := p.sendStaged(); err != nil || w.down {
		return p.abandon(0, err)
	}
	return w.sent, nil
}

// abandon ends a WriteBatch that stopped early: the frames not yet handed
// to the kernel (rest of the caller's, plus the open run) are counted as
// dropped if the device is down, and forgotten otherwise (closed, gone).
func (p *afpacketPort) abandon(rest int, err error) (int, error) {
	w := &p.txw
	rest += w.co.Segments()
	w.co.Flush()
	if w.down {
		p.txDown.Add(uint64(rest))
	}
	return w.sent, err
}

// stageRun moves the coalescer's run into the next message. A merged run
// lives in the coalescer's buffer, which the next run reuses, so it is
// sent at once, with whatever is staged before it.
func (p *afpacketPort) stageRun() error {
	w := &p.txw
	n := w.co.Segments()
	if n == 0 {
		return nil
	}
	h, f := w.co.Flush()
	i := w.k
	h.Encode(w.hdrs[i][:])
	p.tx.Batch().SetBufs(i, w.hdrs[i][:], f)
	w.segs[i] = n
	w.k++
	if n > 1 || w.k == len(w.segs) {
		return p.sendStaged()
	}
	return nil
}

// sendStaged sends the staged messages and accounts for their frames.
func (p *afpacketPort) sendStaged() error {
	w := &p.txw
	k := w.k
	if k == 0 {
		return nil
	}
	b := p.tx.Batch()
	defer func() { b.Release(k); w.k = 0 }()
	for from := 0; from < k; {
		next, err := p.tx.Write(from, k, 0)
		w.sent += w.frames(from, next)
		from = next
		if err == nil {
			break
		}
		switch {
		case p.closed.Load():
			return net.ErrClosed
		case errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
			return ErrPortGone
		case errors.Is(err, unix.ENETDOWN):
			p.txDown.Add(uint64(w.frames(from, k)))
			w.down = true
			return nil
		case errors.Is(err, unix.ENOBUFS):
			p.txError.Add(uint64(w.frames(from, k)))
			from = k
		default: // EMSGSIZE, EINVAL, ...: this message only
			p.txError.Add(uint64(w.segs[from]))
			from++
		}
	}
	return nil
}

// frames counts the caller's frames in messages [from, to).
func (w *txStage) frames(from, to int) int {
	n := 0
	for _, s := range w.segs[from:to] {
		n += s
	}
	return n
}
