// Package gossip finds the other vxswitch hosts (VTEPs) with
// hashicorp/memberlist and reports them to a Handler.
//
// Each member announces a Meta (VTEP address, VXLAN port, bridge name,
// VNIs) in memberlist's node metadata, in a versioned TLV encoding that
// older releases can read (see EncodeMeta). Start joins the seeds; the
// Handler then sees MemberUp, MemberUpdate and MemberDown for every other
// member, from one goroutine of this package, never from memberlist's
// callbacks. The agent turns those into tunnels and FDB purges; this package
// knows nothing of either.
//
// With a key (Config.KeyFile, see LoadKey) all gossip is encrypted and a
// member with another key, or none, is not admitted; memberlist's reasons
// are logged through the Config.Logger with component=gossip.
//
// Stopping: Close = Leave (the others report this node "left") then
// Shutdown. Shutdown alone makes the others report it "failed" once their
// probes time out (a few seconds with DefaultConfig).
//
// The package imports nothing of vxswitch.
package gossip
