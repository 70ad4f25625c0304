package overlay

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/vxswitch/vxswitch/dataplane"
)

// Accept modes: which senders an endpoint takes packets from.
const (
	AcceptAny     = "any"     // every sender
	AcceptMembers = "members" // configured remotes and gossip members only
)

// Config configures an Endpoint. The zero value of a field means its
// default (see DefaultConfig); only Local is required.
type Config struct {
	// Local is the underlay address to bind, IPv4 or IPv6. It picks the
	// underlay's address family; remotes of the other family are dropped
	// (tx_bad_dest).
	Local netip.Addr
	// Port is the UDP port to listen on and the default port of remote
	// VTEPs. Default 4789.
	Port uint16
	// SrcPortMin and SrcPortMax bound the outer UDP source ports.
	// Default 49152-65535.
	SrcPortMin, SrcPortMax uint16
	// SendSockets is the number of send sockets, each bound to its own
	// source port; a frame's flow hash picks one. Default 16, at most the
	// size of the source port range.
	SendSockets int
	// TTL of outer packets (IPv6 hop limit); 0 leaves the kernel default.
	TTL int
	// DF sets Don't Fragment on outer IPv4 packets (IP_PMTUDISC_DO); false
	// lets the kernel fragment them (IP_PMTUDISC_DONT). For IPv6 it picks
	// IPV6_PMTUDISC_DO or DONT the same way.
	DF bool
	// Accept is AcceptAny (default) or AcceptMembers.
	Accept string
	// VNIs are the VNIs this bridge carries; packets for others are
	// dropped (unknown_vni). SetVNIs changes them later.
	VNIs []uint32
	// Remotes are static VTEPs at Port, serving every VNI.
	Remotes []netip.Addr
	// BatchSize is the most packets one ReadBatch returns and what
	// BatchSize reports. Default 64.
	BatchSize int
	// Queues is the number of receive sockets, bound to Local:Port with
	// SO_REUSEPORT when more than one, and of send lanes, each with
	// SendSockets send sockets of its own (see Endpoint.Queues): one per
	// reader goroutine of the switch. Default 1, at most
	// dataplane.MaxQueues; SendSockets is lowered so that every lane's
	// sockets get ports of their own in the source port range.
	Queues int
	// HashSeed seeds the flow hash of the outer source port; 0 picks a
	// random seed.
	HashSeed uint64
	// NoOffload sends one datagram per message (no UDP_SEGMENT) and
	// leaves UDP_GRO off on the receive socket: for comparisons, and for
	// an underlay that mishandles UDP GSO. By default both are on, and
	// GSO turns itself off if the kernel refuses it.
	NoOffload bool
	// Logger receives set-up and table-change messages; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default filled in, except
// Local.
func DefaultConfig() Config {
	return Config{
		Port:        DefaultPort, // IANA; the Linux vxlan device needs "dstport 4789"
		SrcPortMin:  49152,       // RFC 7348 §5 recommends the dynamic/private range
		SrcPortMax:  65535,
		SendSockets: 16, // 4 bits of flow entropy: enough for typical ECMP fan-out
		Accept:      AcceptAny,
		BatchSize:   64, // one recvmmsg/sendmmsg worth; matches the ports'
		Queues:      1,  // one socket each way, as a single reader needs
	}
}

// withDefaults returns c with defaults filled in, or an error naming the
// bad field.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Port == 0 {
		c.Port = d.Port
	}
	if c.SrcPortMin == 0 && c.SrcPortMax == 0 {
		c.SrcPortMin, c.SrcPortMax = d.SrcPortMin, d.SrcPortMax
	}
	if c.SendSockets == 0 {
		c.SendSockets = d.SendSockets
	}
	if c.Accept == "" {
		c.Accept = d.Accept
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.Queues == 0 {
		c.Queues = d.Queues
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if !c.Local.IsValid() {
		errs = append(errs, errors.New("vxlan local: no underlay address"))
	} else if c.Local.Zone() != "" {
		errs = append(errs, fmt.Errorf("vxlan local %s: scoped addresses are not supported", c.Local))
	}
	c.Local = c.Local.Unmap()
	if c.SrcPortMin == 0 || c.SrcPortMin > c.SrcPortMax {
		errs = append(errs, fmt.Errorf("vxlan source ports %d-%d: not a range of non-zero ports", c.SrcPortMin, c.SrcPortMax))
	}
	if c.SendSockets < 0 {
		errs = append(errs, fmt.Errorf("vxlan send sockets %d: must be positive", c.SendSockets))
	}
	if c.Queues < 1 || c.Queues > dataplane.MaxQueues {
		errs = append(errs, fmt.Errorf("vxlan queues %d: must be 1-%d", c.Queues, dataplane.MaxQueues))
	} else if span := int(c.SrcPortMax) - int(c.SrcPortMin) + 1; c.SendSockets*c.Queues > span && span > 0 {
		if span < c.Queues {
			errs = append(errs, fmt.Errorf("vxlan source ports %d-%d: %d ports cannot give each of %d queues a send socket",
				c.SrcPortMin, c.SrcPortMax, span, c.Queues))
		}
		c.SendSockets = max(1, span/c.Queues)
	}
	if c.TTL < 0 || c.TTL > 255 {
		errs = append(errs, fmt.Errorf("vxlan ttl %d: must be 0-255", c.TTL))
	}
	if c.Accept != AcceptAny && c.Accept != AcceptMembers {
		errs = append(errs, fmt.Errorf("vxlan accept %q: must be %q or %q", c.Accept, AcceptAny, AcceptMembers))
	}
	if c.BatchSize < 0 || c.BatchSize > 1024 {
		errs = append(errs, fmt.Errorf("vxlan batch size %d: must be 1-1024", c.BatchSize))
	}
	for _, v := range c.VNIs {
		if v > MaxVNI {
			errs = append(errs, fmt.Errorf("vxlan vni %d: larger than %d", v, MaxVNI))
		}
	}
	for _, r := range c.Remotes {
		if !r.IsValid() || r.Unmap().Is4() != c.Local.Is4() {
			errs = append(errs, fmt.Errorf("vxlan remote %s: not an address of the underlay's family (local %s)", r, c.Local))
		}
	}
	return c, errors.Join(errs...)
}
