//go:build !linux

package overlay

import (
	"errors"
	"net/netip"

	"github.com/vxswitch/vxswitch/dataplane"
)

// errUnsupported: the endpoint needs recvmmsg/sendmmsg.
var errUnsupported = errors.New("vxlan: endpoint needs Linux")

// ErrNoHeadroom is returned by ReadBatch when off < VXLANHdrLen.
var ErrNoHeadroom = errors.New("vxlan: ReadBatch offset smaller than the VXLAN header")

type endpointSys struct{}

// Listen fails: only Linux is supported.
func Listen(cfg Config) (*Endpoint, error) { return nil, errUnsupported }

// LocalAddr returns the zero AddrPort.
func (e *Endpoint) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// Close does nothing.
func (e *Endpoint) Close() error { return nil }

// ReadBatch fails: only Linux is supported.
func (e *Endpoint) ReadBatch(bufs [][]byte, sizes []int, meta []dataplane.TunnelMeta, off int) (int, error) {
	return 0, errUnsupported
}

// WriteBatch fails: only Linux is supported.
func (e *Endpoint) WriteBatch(bufs [][]byte, offs []int, meta []dataplane.TunnelMeta) (int, error) {
	return 0, errUnsupported
}

// Queue is one queue of an Endpoint; see endpoint_linux.go.
type Queue struct{}

// Queues returns nothing: only Linux is supported.
func (e *Endpoint) Queues() []dataplane.TunnelQueue { return nil }
