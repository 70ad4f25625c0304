// Package vnet handles the virtio-net offload header that Linux puts in
// front of frames on AF_PACKET sockets with PACKET_VNET_HDR and on TAP
// devices with IFF_VNET_HDR, and does in software what the header asks for:
//
//   - [Decode] and [Hdr.Encode] read and write the 10-byte legacy
//     struct virtio_net_hdr.
//   - [FinishChecksum] completes a checksum the kernel left unfinished
//     (CHECKSUM_PARTIAL, flag [FlagNeedsCsum]).
//   - [Segment] splits a TCP (TSO) or UDP (USO) super-frame of up to 64 KB
//     into wire-sized Ethernet frames with every header and checksum fixed,
//     so the output needs no further offload.
//
// With checksum offload or TSO on, which is the default on a veth or a TAP,
// the kernel hands a packet socket frames whose checksums are not finished
// and TCP super-frames far larger than the MTU. A switch that forwards them
// as they are sends garbage; this package is what turns them into frames.
//
// Everything here is allocation-free and pure: no syscalls, no globals that
// change, no logging. Inputs are never modified; outputs go into buffers the
// caller owns. The package imports nothing from vxswitch and nothing outside
// the standard library, so the dataplane ports (AF_PACKET, TAP) and the
// overlay (UDP GSO/GRO) can all use it.
package vnet
