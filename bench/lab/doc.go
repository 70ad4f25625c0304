// Package lab builds network-namespace labs for tests, the demo and the
// benchmarks: one topology builder, so the classic blue/green lab is
// written once.
//
// A Lab owns everything it creates: namespaces, interfaces, background
// processes and a temporary directory for configs, sockets and logs.
// Lab.Close undoes all of it in reverse order, and the undo step of each
// namespace is recorded before `ip netns add` runs, so a half-built lab is
// torn down too. Tests get a Lab whose Close is registered with t.Cleanup
// (ForTest); commands call Close on return and on SIGINT/SIGTERM.
//
// Names: every namespace is "<prefix>-<name>" (e.g. "vxb1a2b-blue-c0"),
// where the prefix is unique to the run. Interfaces are created directly
// inside their namespaces (never in the root namespace unless asked), so
// their short names ("underlay", "c0", "eth0") cannot collide with the
// host's or with a concurrent run's.
//
// Topologies (TwoHosts, OneHost) and the switches under test (the
// Contender implementations: vxswitch, the kernel bridge + vxlan device,
// Open vSwitch's userspace datapath) live here too; measurements live in
// bench/measure.
//
// The package shells out to iproute2 (`ip`) rather than using netlink
// from Go: every step is a command a person can read in the logs and
// repeat by hand. It imports nothing from vxswitch itself.
package lab
