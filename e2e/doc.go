// Package e2e holds end-to-end tests: the real vxswitch binary in network
// namespaces with real traffic (ping, iperf3, frames made with gopacket).
// They need root; outside CI they skip without it, in CI they fail.
package e2e
