#!/bin/sh
# capture.sh regenerates the kernel-made VXLAN captures in this directory:
#
#   kernel_vxlan_ipv4.pcap  VNI 42 over an IPv4 underlay (198.51.100.0/24)
#   kernel_vxlan_ipv6.pcap  VNI 4242 over an IPv6 underlay (2001:db8:100::/64)
#
# Two network namespaces joined by a veth pair each hold a Linux vxlan
# device (dstport 4789, fixed MACs, IPv6 off on the overlay so that no ND or
# MLD gets in); one pings the other across the overlay (192.0.2.0/24), so
# the captures hold ARP request and reply and ICMP echo request and reply,
# as the kernel puts them on the underlay. Needs root, iproute2, tcpdump.
set -eu
cd "$(dirname "$0")"
P="vxo$$"            # unique per run; interface names stay under 16 bytes
A="${P}a" B="${P}b"
cleanup() {
	[ -n "${TD:-}" ] && kill "$TD" 2>/dev/null || true
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ip netns add "$A"
ip netns add "$B"
ip link add "${P}ua" type veth peer name "${P}ub"
ip link set "${P}ua" netns "$A"
ip link set "${P}ub" netns "$B"
n=1
for ns in "$A" "$B"; do
	side=$(printf %s "$ns" | tail -c 1)
	u="${P}u$side"
	ip -n "$ns" link set lo up
	ip -n "$ns" link set "$u" address "02:00:00:00:00:0$n" up
	ip -n "$ns" addr add "198.51.100.$n/24" dev "$u"
	ip -n "$ns" addr add "2001:db8:100::$n/64" dev "$u" nodad
	peer=$((3 - n))
	ip -n "$ns" link add "${P}x4" address "02:00:00:00:04:0$n" type vxlan id 42 \
		local "198.51.100.$n" remote "198.51.100.$peer" dstport 4789 dev "$u"
	ip -n "$ns" link add "${P}x6" address "02:00:00:00:06:0$n" type vxlan id 4242 \
		local "2001:db8:100::$n" remote "2001:db8:100::$peer" dstport 4789 dev "$u"
	for x in x4 x6; do
		ip netns exec "$ns" sysctl -qw "net.ipv6.conf.${P}$x.disable_ipv6=1"
		ip -n "$ns" link set "${P}$x" up
	done
	ip -n "$ns" addr add "192.0.2.$n/25" dev "${P}x4"
	ip -n "$ns" addr add "192.0.2.$((128 + n))/25" dev "${P}x6"
	n=$((n + 1))
done

# capture FILE FILTER TARGET: ping TARGET from A while tcpdump writes FILE.
capture() {
	log=$(mktemp)
	ip netns exec "$A" tcpdump -Z root -U --immediate-mode -n -i "${P}ua" -w "$1" "$2" 2>"$log" &
	TD=$!
	i=0
	until grep -q "listening on" "$log"; do
		i=$((i + 1)); [ $i -lt 100 ] || { cat "$log"; exit 1; }
		sleep 0.05
	done
	ip netns exec "$A" ping -q -c 2 -i 0.2 -W 2 "$3" >/dev/null
	sleep 1 # let tcpdump write what the ring holds
	kill "$TD"; wait "$TD" 2>/dev/null || true
	TD=
	rm -f "$log"
}
capture kernel_vxlan_ipv4.pcap "ip and udp dst port 4789" 192.0.2.2
capture kernel_vxlan_ipv6.pcap "ip6 and udp dst port 4789" 192.0.2.130
echo "captured: kernel_vxlan_ipv4.pcap kernel_vxlan_ipv6.pcap"
