// Package fdb is the switch's MAC/VLAN forwarding database (the "TCAM"
// table): learning, look-up, ageing, size limits with per-port eviction,
// static entries, flushing and purging by remote VTEP.
//
// The hot path takes the table's read lock once per batch (BeginRead /
// EndRead), looks up and checks entries without allocating, queues the few
// learn requests that need a write, and applies them with LearnBatch under
// one write lock. A frame whose source is already known on the same port
// and was seen this second needs no write at all.
//
// fdb imports nothing from vxswitch.
package fdb
