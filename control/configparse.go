package control

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vxswitch/vxswitch/dataplane"
)

// parser walks the YAML node tree, so that every problem can name its key
// path and line, and collects all problems instead of stopping at the first.
type parser struct {
	file string
	cfg  *Config
	errs []error
	// key is the key node whose value is being parsed, so that "required"
	// can point at the section's own line.
	key *yaml.Node
}

// err joins the problems in the order of their lines.
func (p *parser) err() error {
	slices.SortStableFunc(p.errs, func(a, b error) int {
		return a.(*ConfigError).Line - b.(*ConfigError).Line
	})
	return errors.Join(p.errs...)
}

func (p *parser) errorf(n *yaml.Node, key, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &ConfigError{File: p.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decode parses the YAML text into one document node. yaml.v3 has had
// panics on malformed input; a panic is turned into an error here rather
// than taking the agent down with a stack trace.
func (p *parser) decode(data []byte) (root *yaml.Node) {
	defer func() {
		if r := recover(); r != nil {
			p.errorf(nil, "", "cannot parse YAML: %v", r)
			root = nil
		}
	}()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&doc)
	if err == nil {
		var next yaml.Node
		if dec.Decode(&next) != io.EOF {
			p.errorf(&next, "", "a config file holds one YAML document; found another")
			return nil
		}
	}
	if err == io.EOF {
		return nil // empty file: all defaults
	}
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		p.errs = append(p.errs, &ConfigError{File: p.file, Line: line, Msg: msg})
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 { // empty file: all defaults
		return nil
	}
	return doc.Content[0]
}

func (p *parser) parse(data []byte) {
	root := p.decode(data)
	if root == nil {
		return
	}
	c := p.cfg
	p.mapping(root, "", map[string]func(string, *yaml.Node){
		"bridge": func(k string, n *yaml.Node) {
			if s, ok := p.str(n, k); ok {
				if s == "" {
					p.errorf(n, k, "must not be empty")
				}
				c.Bridge = s
			}
		},
		"mtu":            func(k string, n *yaml.Node) { p.mtu(n, k, &c.MTU) },
		"mac-aging":      func(k string, n *yaml.Node) { p.duration(n, k, &c.MACAging) },
		"mac-table-size": func(k string, n *yaml.Node) { p.intRange(n, k, 1, 1<<24, &c.MACTableSize) },
		"ports":          p.ports,
		"vxlan":          p.vxlan,
		"gossip":         p.gossip,
		"control": func(k string, n *yaml.Node) {
			p.mapping(n, k, map[string]func(string, *yaml.Node){
				"socket": func(k string, n *yaml.Node) {
					if s, ok := p.str(n, k); ok {
						switch {
						case s == "":
							p.errorf(n, k, "must not be empty")
						case len(s) > 107:
							p.errorf(n, k, "path is %d bytes; a unix socket path has at most 107", len(s))
						}
						c.Control.Socket = s
					}
				},
				"group": func(k string, n *yaml.Node) {
					if s, ok := p.str(n, k); ok {
						c.Control.Group = s
					}
				},
			})
		},
		"metrics": func(k string, n *yaml.Node) {
			p.mapping(n, k, map[string]func(string, *yaml.Node){
				"listen": func(k string, n *yaml.Node) {
					if s, ok := p.str(n, k); ok {
						if s != "" {
							if _, err := parseHostPort(s, 0); err != nil {
								p.errorf(n, k, "%v", err)
							}
						}
						c.Metrics.Listen = s
					}
				},
			})
		},
	})
	p.crossChecks(root)
}

// crossChecks finds combinations that are each valid but impossible together.
func (p *parser) crossChecks(root *yaml.Node) {
	c := p.cfg
	if c.Gossip.Enabled && !c.VXLAN.Enabled {
		p.errorf(root, "gossip", "needs a vxlan section: gossip finds the VTEPs of the tunnel")
	}
	v := &c.VXLAN
	if v.Enabled && v.Accept == AcceptMembers && len(v.Remotes) == 0 && !c.Gossip.Enabled {
		p.errorf(root, "vxlan.accept", "members with no remotes and no gossip section would accept nothing")
	}
}

// mapping checks that n is a mapping (or empty) and calls fields[key] for
// each key. Unknown and repeated keys are errors.
func (p *parser) mapping(n *yaml.Node, path string, fields map[string]func(string, *yaml.Node)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "want a mapping of keys, got %s", describe(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := resolve(n.Content[i]), n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			p.errorf(kn, path, "a key must be a plain word, got %s", describe(kn))
			continue
		}
		key := join(path, kn.Value)
		if seen[kn.Value] {
			p.errorf(kn, key, "repeated key")
			continue
		}
		seen[kn.Value] = true
		f, ok := fields[kn.Value]
		if !ok {
			p.errorf(kn, key, "unknown key (want one of %s)", strings.Join(sortedKeys(fields), ", "))
			continue
		}
		p.key = kn
		f(key, vn)
	}
}

// sequence checks that n is a list (or empty) and calls f for each item.
func (p *parser) sequence(n *yaml.Node, path string, f func(string, *yaml.Node)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, path, "want a list, got %s", describe(n))
		return
	}
	for i, item := range n.Content {
		f(fmt.Sprintf("%s[%d]", path, i), resolve(item))
	}
}

// scalar returns the text of a scalar node, or reports what it is instead.
func (p *parser) scalar(n *yaml.Node, key string) (string, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.errorf(n, key, "want a value, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// str returns a scalar's text; numbers and booleans keep their text as
// written, so "bridge: 7" names the bridge "7".
func (p *parser) str(n *yaml.Node, key string) (string, bool) { return p.scalar(n, key) }

// integer parses an integer scalar, in any form YAML allows (0x10, 1_000).
func (p *parser) integer(n *yaml.Node, key string) (int64, bool) {
	s, ok := p.scalar(n, key)
	if !ok {
		return 0, false
	}
	var v int64
	if resolve(n).ShortTag() != "!!int" || resolve(n).Decode(&v) != nil {
		p.errorf(n, key, "want an integer, got %q", s)
		return 0, false
	}
	return v, true
}

func (p *parser) intRange(n *yaml.Node, key string, lo, hi int64, dst *int) {
	if v, ok := p.integer(n, key); ok {
		if v < lo || v > hi {
			p.errorf(n, key, "%d out of range %d-%d", v, lo, hi)
			return
		}
		*dst = int(v)
	}
}

func (p *parser) mtu(n *yaml.Node, key string, dst *int) {
	if v, ok := p.integer(n, key); ok {
		if v < 68 || v > 65535 {
			p.errorf(n, key, "MTU %d out of range 68-65535", v)
			return
		}
		*dst = int(v)
	}
}

func (p *parser) boolean(n *yaml.Node, key string, dst *bool) {
	s, ok := p.scalar(n, key)
	if !ok {
		return
	}
	if resolve(n).ShortTag() != "!!bool" || resolve(n).Decode(dst) != nil {
		p.errorf(n, key, "want true or false, got %q", s)
	}
}

// duration accepts "300s", "5m", or a bare number of seconds.
func (p *parser) duration(n *yaml.Node, key string, dst *time.Duration) {
	s, ok := p.scalar(n, key)
	if !ok {
		return
	}
	var d time.Duration
	var err error
	if resolve(n).ShortTag() == "!!int" {
		var secs int64
		if err = resolve(n).Decode(&secs); err == nil && secs <= int64(24*365*time.Hour/time.Second) {
			d = time.Duration(secs) * time.Second
		} else {
			err = errors.New("too large")
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	switch {
	case err != nil:
		p.errorf(n, key, "bad duration %q: want a number of seconds or a duration such as 300s or 5m", s)
	case d <= 0:
		p.errorf(n, key, "duration %q must be positive", s)
	default:
		*dst = d
	}
}

// vlan parses one VLAN ID.
func (p *parser) vlan(n *yaml.Node, key string) (uint16, bool) {
	v, ok := p.integer(n, key)
	if !ok {
		return 0, false
	}
	if v < 0 || v > dataplane.MaxVLAN {
		p.errorf(n, key, "VLAN %d out of range 0-%d", v, dataplane.MaxVLAN)
		return 0, false
	}
	return uint16(v), true
}

// vlanItem parses one trunks item: 7 or "220-221".
func (p *parser) vlanItem(n *yaml.Node, key string, set *dataplane.VLANSet) {
	s, ok := p.scalar(n, key)
	if !ok {
		return
	}
	if err := parseVLANItem(s, set); err != nil {
		p.errorf(n, key, "%v", err)
	}
}

// parseVLANItem parses "7" or "220-221" into set; the CLI's --trunks uses it too.
func parseVLANItem(s string, set *dataplane.VLANSet) error {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	a, err := parseVLANNumber(lo, s)
	if err != nil {
		return err
	}
	b := a
	if isRange {
		if b, err = parseVLANNumber(hi, s); err != nil {
			return err
		}
		if b < a {
			return fmt.Errorf("VLAN range %q ends before it starts", s)
		}
	}
	for v := int(a); v <= int(b); v++ {
		set.Add(uint16(v))
	}
	return nil
}

func parseVLANNumber(s, item string) (uint16, error) {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	switch {
	case err != nil:
		return 0, fmt.Errorf("bad VLAN %q: want a number 0-%d or a range such as 220-221", item, dataplane.MaxVLAN)
	case v < 0 || v > dataplane.MaxVLAN:
		return 0, fmt.Errorf("VLAN %d out of range 0-%d", v, dataplane.MaxVLAN)
	}
	return uint16(v), nil
}

// parseVLANList parses "7,220-221" (the CLI's --trunks).
func parseVLANList(s string) (dataplane.VLANSet, error) {
	var set dataplane.VLANSet
	for _, item := range strings.Split(s, ",") {
		if err := parseVLANItem(item, &set); err != nil {
			return set, err
		}
	}
	return set, nil
}

// parseHostPort checks host:port; with defPort > 0 the port may be
// omitted. An IPv6 host without a port may be written without brackets.
func parseHostPort(s string, defPort int) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if defPort == 0 {
			return "", fmt.Errorf("bad address %q: want host:port", s)
		}
		host, port = strings.Trim(s, "[]"), strconv.Itoa(defPort)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("bad address %q: port %q is not a number 0-65535", s, port)
	}
	if strings.ContainsAny(host, " /[]") {
		return "", fmt.Errorf("bad address %q: bad host %q", s, host)
	}
	return net.JoinHostPort(host, port), nil
}

// parseAddrPort parses an IP address with an optional port.
func parseAddrPort(s string, defPort uint16) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	if port, ok := strings.CutPrefix(s, ":"); ok && defPort != 0 { // ":7947": all addresses
		if n, err := strconv.ParseUint(port, 10, 16); err == nil {
			return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(n)), nil
		}
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad address %q: want an IP address, optionally with :port", s)
	}
	return netip.AddrPortFrom(a, defPort), nil
}

// checkPortName applies the kernel's rules for interface names, and keeps
// "vxlan" for the tunnel, which fdb show lists under that name.
func checkPortName(name string) error {
	switch {
	case name == "":
		return errors.New("port name must not be empty")
	case len(name) > 15:
		return fmt.Errorf("port name %q is %d bytes; an interface name has at most 15", name, len(name))
	case name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n\r\x00"):
		return fmt.Errorf("port name %q is not a valid interface name", name)
	case name == dataplane.TunnelName:
		return fmt.Errorf("port name %q is reserved for the tunnel", name)
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// resolve follows YAML aliases (*anchor) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func describe(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "an unexpected YAML node"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
