#!/usr/bin/env bash
# Installs the Debian packages the tests, the demo and the benchmarks use,
# if they are missing. Safe to run again; does nothing when all are there.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip            || need+=(iproute2)
have ping          || need+=(iputils-ping)
have iperf3        || need+=(iperf3)
have ovs-vswitchd  || need+=(openvswitch-switch)
have trafgen       || need+=(netsniff-ng)
have tshark        || need+=(tshark)
have tcpdump       || need+=(tcpdump)
have busybox       || need+=(busybox-static)
have ethtool       || need+=(ethtool)

if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing ${need[*]}; run as root to install them" >&2
	exit 0
fi
echo "install-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
