package dataplane

import "errors"

// queuedPort is a MultiQueuePort made of single-queue ports of one device,
// each with its own fd, receive state and transmit lock: the queues of a
// multi-queue TAP, or the sockets of an AF_PACKET fanout group. The Port
// methods use the first queue; Close closes them all, DropCounts adds
// them up.
type queuedPort struct {
	qs     []Port
	queues []Queue // qs as Queues, made once
}

var _ MultiQueuePort = (*queuedPort)(nil)

// newQueuedPort joins qs (at least two) into one port.
func newQueuedPort(qs []Port) *queuedPort {
	p := &queuedPort{qs: qs, queues: make([]Queue, len(qs))}
	for i, q := range qs {
		p.queues[i] = q
	}
	return p
}

func (p *queuedPort) ReadBatch(bufs [][]byte, sizes []int, off int) (int, error) {
	return p.qs[0].ReadBatch(bufs, sizes, off)
}

func (p *queuedPort) WriteBatch(bufs [][]byte) (int, error) { return p.qs[0].WriteBatch(bufs) }

func (p *queuedPort) BatchSize() int { return p.qs[0].BatchSize() }

func (p *queuedPort) Queues() []Queue { return p.queues }

// Close closes every queue; readers of each return net.ErrClosed. It is
// safe to call more than once.
func (p *queuedPort) Close() error {
	var errs []error
	for _, q := range p.qs {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}

// DropCounts adds up the drops of the queues.
func (p *queuedPort) DropCounts() PortDrops {
	var d PortDrops
	for _, q := range p.qs {
		if dc, ok := q.(DropCounter); ok {
			qd := dc.DropCounts()
			d.RxTooBig += qd.RxTooBig
			d.TxError += qd.TxError
			d.TxDown += qd.TxDown
			d.RxOffload += qd.RxOffload
			d.RxOverflow += qd.RxOverflow
		}
	}
	return d
}
