// Package dataplane is the switch: ports (TAP and AF_PACKET), VLAN
// classification with Open vSwitch semantics, and the forwarding pipeline.
//
// Data path, per reader goroutine (one per queue of each port and of the
// tunnel: one each unless Config.Workers asks devices for more, see
// MultiQueuePort):
//
//	ReadBatch -> classify (VLAN mode, strip tag in place)
//	          -> learn + look up (FDB read lock once per batch)
//	          -> stage per egress port (push tag in place, or copy for
//	             floods that need both forms; MTU check)
//	          -> WriteBatch per egress port (through the port's queue of
//	             the reader's own lane), tunnel batch per VTEP
//
// Buffers are allocated when a reader starts; nothing is allocated per
// frame. The port table is an immutable snapshot swapped by the control
// path. dataplane imports fdb and never control, cmd or overlay.
package dataplane
