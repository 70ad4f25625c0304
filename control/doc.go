// Package control is vxswitch's control plane on one host: the
// configuration file (Config, Parse, Load), the agent that wires the FDB,
// the switch, the tunnel and gossip together and owns their lifecycle
// (Start, Agent.Close), and the local HTTP/JSON API on the agent's unix
// socket, with its server (NewHandler, ListenSocket) and client (Client).
//
// Loading is pure: Parse reads no files and touches no devices; only Start
// does. The API types in api.go are also what `vxswitch ... --json` prints,
// so their JSON keys are a user-facing contract.
//
// control imports dataplane, fdb and control/gossip (and overlay, once the
// tunnel is wired); none of them may import control, and control never
// imports cmd.
package control
