// Package mmsg sends and receives batches of datagrams with one system call
// (recvmmsg(2), sendmmsg(2)) without allocating.
//
// golang.org/x/sys/unix has no wrappers for these calls and x/net's
// ipv4/ipv6 ReadBatch allocates a net.Addr per message, so vxswitch keeps its
// own: a Batch holds preallocated message headers, iovecs, socket addresses
// (raw sockaddr_in/sockaddr_in6 storage, one per message) and control
// buffers (cmsg space, one per message). Callers point the iovecs at their
// buffers once per batch, call Recv or Send, and read lengths, flags,
// addresses and control data back from the Batch.
//
// Reader and Writer run a Batch inside syscall.RawConn callbacks created
// once, so the file descriptor stays in Go's netpoller: a Read waits without
// holding an OS thread, and closing the file unblocks it.
//
// Nothing here allocates after NewBatch, NewReader and NewWriter. The
// package imports nothing of vxswitch; it is Linux-only.
package mmsg
