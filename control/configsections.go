package control

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/vxswitch/vxswitch/dataplane"
)

// MaxVNI is the largest 24-bit VXLAN network identifier.
const MaxVNI = 1<<24 - 1

// ports parses the ports list into normalised dataplane.PortConfigs.
func (p *parser) ports(key string, n *yaml.Node) {
	names := map[string]int{} // port name -> line of first use
	p.sequence(n, key, func(k string, item *yaml.Node) {
		before := len(p.errs)
		pc := dataplane.PortConfig{}
		var nameNode, typeNode, netnsNode, addrNode, modeNode *yaml.Node
		p.mapping(item, k, map[string]func(string, *yaml.Node){
			"name": func(k string, n *yaml.Node) {
				nameNode = n
				if s, ok := p.str(n, k); ok {
					if err := checkPortName(s); err != nil {
						p.errorf(n, k, "%v", err)
					} else if line, dup := names[s]; dup {
						p.errorf(n, k, "port %q is already defined on line %d", s, line)
					} else {
						names[s] = resolve(n).Line
					}
					pc.Name = s
				}
			},
			"type": func(k string, n *yaml.Node) {
				typeNode = n
				if s, ok := p.str(n, k); ok {
					switch t := dataplane.PortType(s); t {
					case dataplane.PortInternal, dataplane.PortSystem:
						pc.Type = t
					default:
						p.errorf(n, k, "type %q: want internal or system", s)
					}
				}
			},
			"tag": func(k string, n *yaml.Node) {
				if v, ok := p.vlan(n, k); ok {
					pc.Tag, pc.HasTag = v, true
				}
			},
			"trunks": func(k string, n *yaml.Node) {
				if r := resolve(n); r != nil && r.Kind == yaml.ScalarNode && !isNull(r) {
					// trunks: "7,220-221" as one string, as ovs-vsctl writes it.
					s, _ := p.scalar(r, k)
					set, err := parseVLANList(s)
					if err != nil {
						p.errorf(r, k, "%v", err)
					}
					pc.Trunks = set
					return
				}
				p.sequence(n, k, func(k string, item *yaml.Node) { p.vlanItem(item, k, &pc.Trunks) })
			},
			"vlan-mode": func(k string, n *yaml.Node) {
				modeNode = n
				if s, ok := p.str(n, k); ok {
					m, err := dataplane.ParseVLANMode(s)
					if err != nil {
						p.errorf(n, k, "%v", err)
					}
					pc.Mode, pc.ModeSet = m, err == nil
				}
			},
			"netns": func(k string, n *yaml.Node) {
				netnsNode = n
				if s, ok := p.str(n, k); ok {
					ns, err := netnsPath(s)
					if err != nil {
						p.errorf(n, k, "%v", err)
					}
					pc.NetNS = ns
				}
			},
			"addresses": func(k string, n *yaml.Node) {
				addrNode = n
				p.sequence(n, k, func(k string, item *yaml.Node) {
					if s, ok := p.str(item, k); ok {
						pfx, err := netip.ParsePrefix(s)
						if err != nil {
							p.errorf(item, k, "bad address %q: want an address with a prefix length, such as 192.0.2.1/24", s)
							return
						}
						pc.Addresses = append(pc.Addresses, pfx)
					}
				})
			},
			"mac": func(k string, n *yaml.Node) {
				if s, ok := p.str(n, k); ok {
					mac, err := dataplane.ParseMAC(s)
					if err != nil {
						p.errorf(n, k, "%v", err)
						return
					}
					pc.MAC = mac
				}
			},
			"mac-limit": func(k string, n *yaml.Node) { p.intRange(n, k, 0, 1<<24, &pc.MACLimit) },
			"mtu":       func(k string, n *yaml.Node) { p.mtu(n, k, &pc.MTU) },
		})
		if isNull(resolve(item)) || resolve(item).Kind != yaml.MappingNode {
			if isNull(resolve(item)) {
				p.errorf(item, k, "empty port: want name and type")
			}
			return
		}
		if nameNode == nil {
			p.errorf(item, k+".name", "required")
		}
		if typeNode == nil {
			p.errorf(item, k+".type", "required (internal or system)")
		}
		if pc.Type == dataplane.PortSystem {
			if netnsNode != nil {
				p.errorf(netnsNode, k+".netns", "applies to internal ports only; a system port is an existing interface")
			}
			if addrNode != nil {
				p.errorf(addrNode, k+".addresses", "applies to internal ports only; set addresses on the existing interface")
			}
		}
		if len(p.errs) == before {
			if err := pc.Normalize(); err != nil {
				at, atKey := item, k
				if modeNode != nil {
					at, atKey = modeNode, k+".vlan-mode"
				}
				p.errorf(at, atKey, "%v", err)
			}
		}
		p.cfg.Ports = append(p.cfg.Ports, pc)
	})
}

func (p *parser) vni(n *yaml.Node, key string) (uint32, bool) {
	v, ok := p.integer(n, key)
	if !ok {
		return 0, false
	}
	if v < 0 || v > MaxVNI {
		p.errorf(n, key, "VNI %d out of range 0-%d", v, MaxVNI)
		return 0, false
	}
	return uint32(v), true
}

func (p *parser) vxlan(key string, n *yaml.Node) {
	v := &p.cfg.VXLAN
	v.Enabled = true
	section := p.key
	var localNode, vniNode, trunkNode *yaml.Node
	var remoteNodes []*yaml.Node // parallel to v.Remotes
	p.mapping(n, key, map[string]func(string, *yaml.Node){
		"local": func(k string, n *yaml.Node) {
			localNode = n
			if s, ok := p.str(n, k); ok {
				a, err := netip.ParseAddr(s)
				switch {
				case err != nil:
					p.errorf(n, k, "bad address %q: want the IPv4 or IPv6 address of this host's VTEP", s)
				case a.IsUnspecified() || a.IsMulticast():
					p.errorf(n, k, "%s is not a unicast address other hosts can send to", a)
				default:
					v.Local = a.Unmap()
				}
			}
		},
		"port": func(k string, n *yaml.Node) {
			var port int
			p.intRange(n, k, 1, 65535, &port)
			if port != 0 {
				v.Port = uint16(port)
			}
		},
		"vni": func(k string, n *yaml.Node) {
			vniNode = n
			v.VNI = map[uint16]uint32{}
			byVNI := map[uint32]uint16{}
			r := resolve(n)
			if !isNull(r) && r.Kind != yaml.MappingNode {
				p.errorf(r, k, "want a mapping of VLAN: VNI, such as {7: 7}, got %s", describe(r))
			}
			if r != nil && r.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(r.Content); i += 2 {
					kn, vn := resolve(r.Content[i]), r.Content[i+1]
					if kn.Kind != yaml.ScalarNode {
						p.errorf(kn, k, "a key must be a VLAN number, got %s", describe(kn))
						continue
					}
					vlanKey := k + "." + kn.Value
					vlan, ok1 := p.vlan(kn, vlanKey)
					vni, ok2 := p.vni(vn, vlanKey)
					if !ok1 || !ok2 {
						continue
					}
					if _, dup := v.VNI[vlan]; dup {
						p.errorf(kn, vlanKey, "VLAN %d is mapped twice", vlan)
					} else if other, dup := byVNI[vni]; dup {
						p.errorf(vn, vlanKey, "VNI %d already carries VLAN %d; each VLAN needs its own VNI", vni, other)
					}
					v.VNI[vlan], byVNI[vni] = vni, vlan
				}
			}
		},
		"trunk-vni": func(k string, n *yaml.Node) {
			trunkNode = n
			if vni, ok := p.vni(n, k); ok {
				v.TrunkVNI, v.HasTrunkVNI = vni, true
			}
		},
		"remotes": func(k string, n *yaml.Node) {
			p.sequence(n, k, func(k string, item *yaml.Node) {
				if s, ok := p.str(item, k); ok {
					ap, err := parseAddrPort(s, 0)
					if err != nil || ap.Addr().IsUnspecified() || ap.Addr().IsMulticast() {
						p.errorf(item, k, "bad remote VTEP %q: want a unicast IP address, optionally with :port", s)
						return
					}
					v.Remotes = append(v.Remotes, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
					remoteNodes = append(remoteNodes, item)
				}
			})
		},
		"accept": func(k string, n *yaml.Node) {
			if s, ok := p.str(n, k); ok {
				switch a := AcceptPolicy(s); a {
				case AcceptAny, AcceptMembers:
					v.Accept = a
				default:
					p.errorf(n, k, "accept %q: want any or members", s)
				}
			}
		},
		"ttl": func(k string, n *yaml.Node) {
			var ttl int
			p.intRange(n, k, 1, 255, &ttl)
			if ttl != 0 {
				v.TTL = uint8(ttl)
			}
		},
		"df":             func(k string, n *yaml.Node) { p.boolean(n, k, &v.DF) },
		"src-port-range": p.srcPortRange,
	})
	if isNull(resolve(n)) || resolve(n).Kind == yaml.MappingNode {
		if localNode == nil {
			p.errorf(section, key+".local", "required: the underlay address of this host's VTEP")
		}
	}
	if vniNode != nil && trunkNode != nil {
		p.errorf(trunkNode, key+".trunk-vni", "cannot be combined with vxlan.vni: trunk-vni carries every VLAN, tagged, in one VNI")
	}
	for i, r := range v.Remotes {
		if v.Local.IsValid() && r.Addr().Is4() != v.Local.Is4() {
			p.errorf(remoteNodes[i], fmt.Sprintf("%s.remotes[%d]", key, i), "%s is not in the address family of vxlan.local %s", r.Addr(), v.Local)
		}
		if r.Addr() == v.Local {
			p.errorf(remoteNodes[i], fmt.Sprintf("%s.remotes[%d]", key, i), "%s is this host's own VTEP (vxlan.local)", r.Addr())
		}
	}
	for i, r := range v.Remotes {
		if r.Port() == 0 {
			v.Remotes[i] = netip.AddrPortFrom(r.Addr(), v.Port)
		}
	}
}

// srcPortRange accepts "49152-65535" or [49152, 65535].
func (p *parser) srcPortRange(k string, n *yaml.Node) {
	p.srcPortNode = n
	v := &p.cfg.VXLAN
	var lo, hi int
	switch r := resolve(n); {
	case r != nil && r.Kind == yaml.SequenceNode:
		if len(r.Content) != 2 {
			p.errorf(r, k, "want two ports [low, high]")
			return
		}
		p.intRange(r.Content[0], k+"[0]", 1, 65535, &lo)
		p.intRange(r.Content[1], k+"[1]", 1, 65535, &hi)
	default:
		s, ok := p.str(n, k)
		if !ok {
			return
		}
		a, b, _ := strings.Cut(s, "-")
		if _, err := fmt.Sscanf(a+" "+b, "%d %d", &lo, &hi); err != nil || lo < 1 || hi > 65535 {
			p.errorf(n, k, "bad port range %q: want low-high within 1-65535, such as 49152-65535", s)
			return
		}
	}
	if lo == 0 || hi == 0 {
		return
	}
	if hi < lo {
		p.errorf(n, k, "port range %d-%d ends before it starts", lo, hi)
		return
	}
	v.SrcPortMin, v.SrcPortMax = uint16(lo), uint16(hi)
}

func (p *parser) gossip(key string, n *yaml.Node) {
	g := &p.cfg.Gossip
	g.Enabled = true
	p.mapping(n, key, map[string]func(string, *yaml.Node){
		"bind": func(k string, n *yaml.Node) {
			if s, ok := p.str(n, k); ok {
				ap, err := parseAddrPort(s, DefaultGossipPort)
				if err != nil {
					p.errorf(n, k, "%v", err)
					return
				}
				g.Bind = ap
			}
		},
		"advertise": func(k string, n *yaml.Node) {
			if s, ok := p.str(n, k); ok {
				ap, err := parseAddrPort(s, 0)
				if err == nil && (ap.Addr().IsUnspecified() || ap.Addr().IsMulticast()) {
					err = fmt.Errorf("advertise %s: other members cannot reach an unspecified or multicast address", ap.Addr())
				}
				if err != nil {
					p.errorf(n, k, "%v", err)
					return
				}
				g.Advertise = ap
			}
		},
		"join": func(k string, n *yaml.Node) {
			p.sequence(n, k, func(k string, item *yaml.Node) {
				if s, ok := p.str(item, k); ok {
					hp, err := parseHostPort(s, DefaultGossipPort)
					if err != nil || strings.HasPrefix(hp, ":") {
						p.errorf(item, k, "bad seed %q: want host or host:port", s)
						return
					}
					g.Join = append(g.Join, hp)
				}
			})
		},
		"name": func(k string, n *yaml.Node) {
			if s, ok := p.str(n, k); ok {
				if err := checkMemberName(s); err != nil {
					p.errorf(n, k, "%v", err)
					return
				}
				g.Name = s
			}
		},
		"key-file": func(k string, n *yaml.Node) {
			if s, ok := p.str(n, k); ok {
				if s == "" {
					p.errorf(n, k, "must not be empty; leave it out for unencrypted gossip")
				}
				g.KeyFile = s
			}
		},
	})
	if g.Advertise.IsValid() && g.Advertise.Port() == 0 {
		g.Advertise = netip.AddrPortFrom(g.Advertise.Addr(), g.Bind.Port())
	}
}

// maxMemberName bounds gossip.name: memberlist sends the name in every
// message that carries a member.
const maxMemberName = 128

// checkMemberName accepts a gossip member name: 1 to maxMemberName bytes
// of printable, non-space text, so that it prints as one column of
// `vxswitch members`.
func checkMemberName(s string) error {
	if s == "" || len(s) > maxMemberName {
		return fmt.Errorf("name %q: want 1-%d characters; leave it out for hostname-bridge", s, maxMemberName)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("name %q: no spaces or control characters", s)
		}
	}
	return nil
}
