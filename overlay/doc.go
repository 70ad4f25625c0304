// Package overlay is the switch's VXLAN tunnel endpoint (RFC 7348): the
// header codec, the table of remote VTEPs with per-VNI flood lists, and a
// UDP endpoint that implements dataplane.Tunnel.
//
// Receive: one UDP socket bound to the local underlay address and port
// 4789, read with recvmmsg (internal/mmsg) from inside the socket's
// syscall.RawConn, so the fd stays in Go's netpoller and Close unblocks a
// reader. Each datagram lands VXLANHdrLen bytes before the caller's
// offset, so the inner frame is where the caller wants it without a copy.
// The socket has UDP_GRO on: the kernel may hand over several datagrams
// of a flow as one message, which ReadBatch splits, copying each
// datagram into its own buffer (rxSplit). Short packets, packets without
// the I flag, for a VNI the bridge does not carry, or (accept: members)
// from an unknown sender are dropped, each datagram under its own
// DropReason counter.
//
// Send: the header is written into the caller's headroom. Datagrams are
// grouped by send socket and destination; consecutive ones of one size
// go as one UDP_SEGMENT (GSO) message, copied into a staging buffer, and
// a lone one is handed to sendmmsg from the caller's buffer (txGSO). A
// flood sends the frames once per destination (head-end replication).
// The outer source port comes from a seeded hash of the inner flow,
// through K send sockets bound to K ports (see txSocket for the
// trade-off). Sockets are non-blocking; a full socket gets one short
// wait per batch, an unreachable VTEP costs a counter, never a stall.
//
// Queues (Config.Queues > 1): that many receive sockets bound to the one
// address with SO_REUSEPORT (the kernel keeps each flow on one) and as
// many send lanes, each with its own send sockets and scratch space. A
// Queue pairs receive socket i with lane i for the switch's reader i, so
// readers share no socket and no lock here (MultiQueueTunnel).
//
// ReadBatch, WriteBatch and the codec do not allocate in steady state;
// TestEndpointAllocs and TestCodecAllocs hold that promise. Stats, VTEPs
// and the table updates allocate; they are control-plane calls.
//
// overlay imports dataplane (for the Tunnel contract) and internal/mmsg;
// it never imports control or cmd, and dataplane never imports overlay.
package overlay
