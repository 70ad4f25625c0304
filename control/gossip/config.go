package gossip

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// DefaultPort is the gossip port: memberlist's own default, 7946, is Docker
// Swarm's, and a lab host often runs both.
const DefaultPort = 7947

// Config configures Start. A zero field takes DefaultConfig's value, so
// Config{Meta: m} is a working configuration.
type Config struct {
	NodeName  string   // unique in the cluster; default hostname-bridge (hostname if Meta.Bridge is empty)
	Bind      string   // IP:port to listen on (TCP and UDP); default 0.0.0.0:7947; port 0 picks a free one
	Advertise string   // IP or IP:port the others reach us at; default: memberlist picks from Bind
	Join      []string // seeds, host or host:port (default port: Bind's); retried until one answers
	KeyFile   string   // base64 key file (see LoadKey); empty means gossip in the clear
	Meta      Meta     // what we announce; VTEP and Port are required
	Logger    *slog.Logger

	// Timing. DefaultConfig derives these from memberlist.DefaultLANConfig,
	// tuned for labs; see there.
	ProbeInterval           time.Duration // how often each member probes a random other
	ProbeTimeout            time.Duration // wait for a direct ack before asking others to probe
	SuspicionMult           int           // suspicion lasts SuspicionMult * max(1, log10(n)) * ProbeInterval at least
	SuspicionMaxTimeoutMult int           // ... and at most this many times that
	GossipInterval          time.Duration // how often state changes are gossiped to a few members
	PushPullInterval        time.Duration // how often a full state exchange runs with one member
	BroadcastTimeout        time.Duration // how long UpdateVNIs and Leave wait for their news to go out
	DepartedTTL             time.Duration // how long Members keeps reporting failed and left members
}

// DefaultConfig returns the configuration for a lab: memberlist's LAN
// defaults except where a comment says otherwise (here, and compression in
// memberlistConfig). With it a member that stops without leaving is
// reported failed within about 3-7 s in a small cluster (a probe round,
// then 2-6 s of suspicion in which a live member can refute).
func DefaultConfig() Config {
	lan := memberlist.DefaultLANConfig()
	return Config{
		// hostname-bridge: two bridges on one host need two names.
		NodeName: "",
		// 7947, not memberlist's 7946: that is Docker Swarm's port.
		Bind: net.JoinHostPort("0.0.0.0", strconv.Itoa(DefaultPort)),

		// LAN: 1s. A dead peer is first probed within ~0.5-1 s. Probe
		// traffic is one small UDP packet per member per interval.
		ProbeInterval: 500 * time.Millisecond,
		// LAN: 500ms. Half the interval, leaving the other half for the
		// indirect probes; still far above a lab's sub-millisecond RTT.
		ProbeTimeout: 250 * time.Millisecond,
		// Unchanged (4): with the shorter interval the minimum suspicion is
		// 2 s for fewer than 10 members, long enough for a busy but live
		// member to refute, so a CPU-starved VM does not flap.
		SuspicionMult: lan.SuspicionMult,
		// LAN: 6, i.e. up to 24 s of suspicion when no one confirms it. 3
		// caps it at 6 s in a small lab; confirmations shorten it as usual.
		SuspicionMaxTimeoutMult: 3,
		// Unchanged (200ms).
		GossipInterval: lan.GossipInterval,
		// LAN: 30s. The periodic full state exchange repairs what gossip
		// missed: members that joined at the same moment do not hear of
		// each other's alive broadcasts (BenchmarkConvergence: up to a
		// whole interval or two), lost UDP, a host back from suspend. It
		// is one TCP exchange of ~100 B per member; memberlist stretches
		// the interval itself above 32 members.
		PushPullInterval: 5 * time.Second,
		// Ours: a broadcast is done after RetransmitMult*log10(n+1) sends,
		// about 1 s for 128 members; 5 s covers a slow host.
		BroadcastTimeout: 5 * time.Second,
		// Ours: memberlist forgets dead members after GossipToTheDeadTime
		// (30 s); `vxswitch members` shows them as failed or left for 5 min.
		DepartedTTL: 5 * time.Minute,
	}
}

// withDefaults returns c with zero fields set from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.NodeName == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "vxswitch"
		}
		c.NodeName = host
		if c.Meta.Bridge != "" {
			c.NodeName += "-" + c.Meta.Bridge
		}
	}
	if c.Bind == "" {
		c.Bind = d.Bind
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&c.ProbeInterval, d.ProbeInterval)
	setDur(&c.ProbeTimeout, d.ProbeTimeout)
	setDur(&c.GossipInterval, d.GossipInterval)
	setDur(&c.PushPullInterval, d.PushPullInterval)
	setDur(&c.BroadcastTimeout, d.BroadcastTimeout)
	setDur(&c.DepartedTTL, d.DepartedTTL)
	if c.SuspicionMult == 0 {
		c.SuspicionMult = d.SuspicionMult
	}
	if c.SuspicionMaxTimeoutMult == 0 {
		c.SuspicionMaxTimeoutMult = d.SuspicionMaxTimeoutMult
	}
	return c
}

// memberlistConfig turns c (with defaults applied) into memberlist's
// configuration, without delegates. It reads the key file.
func (c Config) memberlistConfig() (*memberlist.Config, error) {
	bind, err := netip.ParseAddrPort(c.Bind)
	if err != nil {
		return nil, fmt.Errorf("gossip: bind %q: want IP:port (e.g. 0.0.0.0:%d): %v", c.Bind, DefaultPort, err)
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.NodeName
	mc.BindAddr = bind.Addr().String()
	mc.BindPort = int(bind.Port())
	mc.AdvertisePort = int(bind.Port())
	if c.Advertise != "" {
		adv, err := parseAdvertise(c.Advertise, bind.Port())
		if err != nil {
			return nil, err
		}
		mc.AdvertiseAddr = adv.Addr().String()
		mc.AdvertisePort = int(adv.Port())
	}
	if c.KeyFile != "" {
		key, err := LoadKey(c.KeyFile)
		if err != nil {
			return nil, err
		}
		mc.SecretKey = key
	}
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.SuspicionMult = c.SuspicionMult
	mc.SuspicionMaxTimeoutMult = c.SuspicionMaxTimeoutMult
	mc.GossipInterval = c.GossipInterval
	mc.PushPullInterval = c.PushPullInterval
	// LAN: true. LZW on every packet buys nothing on a LAN, and each
	// packet allocates a fresh 64 KB LZW table: garbage in the process that
	// also runs the dataplane (and a fifth of memberlist's CPU in
	// BenchmarkConvergence).
	// Receivers decompress whatever they get, so members that still
	// compress interoperate.
	mc.EnableCompression = false
	mc.Logger = newMemberlistLogger(c.Logger)
	return mc, nil
}

// parseAdvertise accepts IP or IP:port; a bare IP takes the bind port.
func parseAdvertise(s string, port uint16) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("gossip: advertise %q: want IP or IP:port", s)
	}
	return netip.AddrPortFrom(a, port), nil
}
