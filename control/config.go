package control

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/vxswitch/vxswitch/dataplane"
)

// Defaults that other packages and the CLI refer to.
const (
	// DefaultSocket is where the agent listens and the CLI connects.
	DefaultSocket = "/run/vxswitch/vxswitch.sock"
	// DefaultVXLANPort is the IANA VXLAN port (RFC 7348 §5).
	DefaultVXLANPort = 4789
	// DefaultGossipPort is memberlist's port here; 7946 is Docker Swarm's.
	DefaultGossipPort = 7947
)

// Config is the agent's configuration. Its fields mirror the YAML keys of
// DESIGN.md one for one (the key is in each field's comment). Parse fills
// it; only Start touches the kernel.
type Config struct {
	Bridge       string                 // bridge: name shown by show and fdb show
	MTU          int                    // mtu: MTU of the ports the switch creates
	MACAging     time.Duration          // mac-aging: learned entries expire after this
	BusyPoll     time.Duration          // busy-poll: readers poll this long after traffic before sleeping; 0 = off
	MACTableSize int                    // mac-table-size: FDB capacity
	Workers      int                    // workers: reader goroutines (queues) per port and per tunnel
	CPUs         []int                  // cpus: the CPUs the agent's threads may run on, sorted; empty = all the process may use
	Ports        []dataplane.PortConfig // ports: normalised; MTU 0 = bridge mtu (internal) or the device's (system)
	VXLAN        VXLANConfig            // vxlan
	Gossip       GossipConfig           // gossip
	Control      ControlConfig          // control
	Metrics      MetricsConfig          // metrics
}

// AcceptPolicy says which senders the tunnel accepts (vxlan.accept).
type AcceptPolicy string

const (
	AcceptAny     AcceptPolicy = "any"     // any sender
	AcceptMembers AcceptPolicy = "members" // configured remotes and gossip members only
)

// VXLANConfig is the vxlan section: the bridge's one tunnel endpoint.
type VXLANConfig struct {
	Enabled bool       // the vxlan section is present
	Local   netip.Addr // local: this VTEP's underlay address
	Port    uint16     // port: UDP destination port
	// VNI maps VLAN -> VNI (vni). Empty and no TrunkVNI: VNI = VLAN ID.
	VNI map[uint16]uint32
	// TrunkVNI carries every VLAN, tagged, inside one VNI (trunk-vni).
	TrunkVNI    uint32
	HasTrunkVNI bool
	// Remotes are static VTEPs (remotes); the port defaults to Port.
	Remotes []netip.AddrPort
	Accept  AcceptPolicy // accept
	TTL     uint8        // ttl: outer IP TTL / hop limit
	DF      bool         // df: set DF on outer IPv4 packets
	// SrcPortMin and SrcPortMax bound the outer UDP source port, which is
	// a hash of the inner flow (src-port-range: "49152-65535").
	SrcPortMin, SrcPortMax uint16
}

// GossipConfig is the gossip section (memberlist).
type GossipConfig struct {
	Enabled bool           // the gossip section is present
	Bind    netip.AddrPort // bind: address and port memberlist listens on
	// Advertise is the address other members reach us at (advertise);
	// the zero value lets memberlist choose.
	Advertise netip.AddrPort
	Join      []string // join: seed members, host:port
	KeyFile   string   // key-file: base64 key of 16, 24 or 32 bytes; empty = no encryption
	// Name is this member's name in the cluster (name); empty means
	// hostname-bridge, which collides on hosts cloned with the same
	// hostname and bridge name.
	Name string
}

// ControlConfig is the control section: the local API socket.
type ControlConfig struct {
	Socket string // socket: path of the unix socket
	Group  string // group: group (name or GID) that owns the socket; empty = root's
}

// MetricsConfig is the metrics section.
type MetricsConfig struct {
	Listen string // listen: host:port for Prometheus /metrics; empty = off
}

// DefaultConfig returns a Config with every default set. This is the one
// place defaults live; Parse starts from it.
func DefaultConfig() *Config {
	return &Config{
		Bridge:       "vxswitch",        // a bridge needs a name for show
		MTU:          1500,              // Ethernet's; set 9000 for jumbo frames
		MACAging:     300 * time.Second, // Open vSwitch's and the kernel bridge's default
		MACTableSize: 8192,              // Open vSwitch's default
		Workers:      1,                 // one reader per port: single-queue TAPs and sockets, as before workers existed
		VXLAN: VXLANConfig{
			Port:       DefaultVXLANPort, // IANA-assigned (RFC 7348)
			Accept:     AcceptAny,        // like the kernel vxlan device
			TTL:        64,               // the usual host default
			DF:         false,            // let the underlay fragment, as the kernel vxlan device does by default
			SrcPortMin: 49152,            // RFC 7348 §5 recommends the dynamic range
			SrcPortMax: 65535,
		},
		Gossip: GossipConfig{
			Bind: netip.AddrPortFrom(netip.IPv4Unspecified(), DefaultGossipPort), // all addresses, port 7947
		},
		Control: ControlConfig{
			Socket: DefaultSocket, // root-owned, mode 0660
		},
		Metrics: MetricsConfig{
			Listen: "", // off unless asked for
		},
	}
}

// Load reads and parses the configuration file at path. Errors name the
// file, line and key; all problems are reported at once.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a YAML configuration; name is used in error messages. It is
// pure: it reads no files and touches no devices. Every problem found is
// returned, joined with errors.Join; each is a *ConfigError.
func Parse(name string, data []byte) (*Config, error) {
	p := &parser{file: name, cfg: DefaultConfig()}
	p.parse(data)
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.cfg, nil
}

// A ConfigError is one problem in a configuration file.
type ConfigError struct {
	File string
	Line int    // 1-based; 0 if unknown
	Key  string // key path such as ports[2].tag; empty for the whole file
	Msg  string
}

func (e *ConfigError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Key != "" {
		s += ": " + e.Key
	}
	return s + ": " + e.Msg
}

// VNIFor returns the VNI that carries vlan, and whether the tunnel carries
// it at all.
func (v *VXLANConfig) VNIFor(vlan uint16) (uint32, bool) {
	switch {
	case v.HasTrunkVNI:
		return v.TrunkVNI, true
	case len(v.VNI) > 0:
		vni, ok := v.VNI[vlan]
		return vni, ok
	default:
		return uint32(vlan), true
	}
}
