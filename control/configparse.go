package control

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
	// workersNode and srcPortNode are the values of workers and
	// vxlan.src-port-range, for crossChecks to point at.
	workersNode, srcPortNode *yaml.Node
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
		"workers":        p.workers,
		"busy-poll":      p.busyPoll,
		"cpus":           p.cpus,
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

// workers is the number of reader goroutines (queues) per port and per
// tunnel: 1 to dataplane.MaxQueues.
func (p *parser) workers(k string, n *yaml.Node) {
	p.workersNode = n
	p.intRange(n, k, 1, dataplane.MaxQueues, &p.cfg.Workers)
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
	// Each worker sends through source ports of its own.
	if span := int(v.SrcPortMax) - int(v.SrcPortMin) + 1; v.Enabled && span < c.Workers {
		at, key := p.srcPortNode, "vxlan.src-port-range"
		if at == nil {
			at, key = p.workersNode, "workers"
		}
		p.errorf(at, key, "%d source ports (%d-%d) cannot give each of %d workers a send socket of its own",
			span, v.SrcPortMin, v.SrcPortMax, c.Workers)
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

// maxBusyPoll bounds busy-poll: longer windows only burn CPU.
const maxBusyPoll = time.Second

// busyPoll parses busy-poll: a duration with a unit (50us, 20ms) from 0
// (off) to maxBusyPoll. A bare number other than 0 is refused: Linux's
// busy_poll counts microseconds, a YAML duration here seconds, and a
// guess either way would be wrong by 10^6.
func (p *parser) busyPoll(key string, n *yaml.Node) {
	s, ok := p.scalar(n, key)
	if !ok {
		return
	}
	if s == "0" {
		p.cfg.BusyPoll = 0
		return
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.errorf(n, key, "bad duration %q: want 0 (off) or a duration with a unit such as 50us or 20ms", s)
	case d < 0 || d > maxBusyPoll:
		p.errorf(n, key, "busy-poll %q: want 0 (off) to %v", s, maxBusyPoll)
	default:
		p.cfg.BusyPoll = d
	}
}

// cpus parses the agent's CPU list ("1", "0-3", "0,2"); which of them
// this process may use is checked when the agent pins itself (PinCPUs).
func (p *parser) cpus(key string, n *yaml.Node) {
	s, ok := p.scalar(n, key)
	if !ok {
		return
	}
	cpus, err := ParseCPUList(s)
	if err != nil {
		p.errorf(n, key, "cpus %q: %v; want CPU numbers and ranges such as 1, 0-3 or 0,2", s, err)
		return
	}
	p.cfg.CPUs = cpus
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
