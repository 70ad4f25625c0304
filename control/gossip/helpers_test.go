package gossip

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// call is one Handler call.
type call struct {
	op string // "up", "update", "down"
	m  Member
}

func (c call) String() string {
	return fmt.Sprintf("%s %s %s %s vnis=%v err=%v", c.op, c.m.Name, c.m.State, c.m.Addr, c.m.Meta.VNIs, c.m.MetaErr)
}

// recorder is a Handler that keeps every call and lets tests wait for one.
// It fails the test if two calls ever overlap.
type recorder struct {
	mu      sync.Mutex
	calls   []call
	changed chan struct{} // closed and replaced on every call

	inCall  atomic.Bool
	overlap atomic.Bool
	before  func(call) // runs first in every call, outside mu; may block
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(op string, m Member) {
	if !r.inCall.CompareAndSwap(false, true) {
		r.overlap.Store(true)
	}
	defer r.inCall.Store(false)
	c := call{op, m}
	if r.before != nil {
		r.before(c)
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) MemberUp(m Member)     { r.add("up", m) }
func (r *recorder) MemberUpdate(m Member) { r.add("update", m) }
func (r *recorder) MemberDown(m Member)   { r.add("down", m) }

func (r *recorder) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// find returns the first call matching op and name (and pred, if not nil).
func (r *recorder) find(op, name string, pred func(Member) bool) (call, bool, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if c.op == op && c.m.Name == name && (pred == nil || pred(c.m)) {
			return c, true, nil
		}
	}
	return call{}, false, r.changed
}

// waitFor waits until the Handler got op for name (matching pred) and
// returns that call; it fails the test after timeout.
func (r *recorder) waitFor(t testing.TB, timeout time.Duration, op, name string, pred func(Member) bool) call {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c, ok, changed := r.find(op, name, pred)
		if ok {
			return c
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %s %s within %v; calls so far:\n%s", op, name, timeout, r)
		}
	}
}

func (r *recorder) String() string {
	var b strings.Builder
	for _, c := range r.snapshot() {
		fmt.Fprintf(&b, "\t%s\n", c)
	}
	return b.String()
}

// logSink collects log lines (slog text format) and lets tests wait for one.
type logSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// line returns the first line containing all of subs.
func (s *logSink) line(subs ...string) (string, bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range strings.Lines(s.buf.String()) {
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(l, sub)
		}
		if all {
			return l, true, nil
		}
	}
	return "", false, s.changed
}

func (s *logSink) waitFor(t testing.TB, timeout time.Duration, subs ...string) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l, ok, changed := s.line(subs...)
		if ok {
			return l
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no log line with %q within %v", subs, timeout)
		}
	}
}

// node is one member under test.
type node struct {
	name string
	g    *Gossip
	rec  *recorder
	logs *logSink
}

func (n *node) addr() string { return n.g.Local().Addr.String() }

var lastIP atomic.Uint32

// loopbackAddr returns a fresh 127.77.x.y: every test member gets its own
// address (127.0.0.0/8 is all local on Linux), and port 0 on top, so
// members never collide with each other, with a running agent or with
// another package's tests.
func loopbackAddr() netip.Addr {
	n := lastIP.Add(1)
	return netip.AddrFrom4([4]byte{127, 77, byte(n / 250), byte(n%250 + 1)})
}

// testConfig is a lab DefaultConfig on a fresh loopback address.
func testConfig(name string, vnis ...uint32) Config {
	c := DefaultConfig()
	ip := loopbackAddr()
	c.NodeName = name
	c.Bind = netip.AddrPortFrom(ip, 0).String()
	c.Meta = Meta{VTEP: ip, Port: 4789, Bridge: "br-" + name, VNIs: vnis}
	// Leave and UpdateVNIs return as soon as their news is out (well under
	// a second); the long timeout only rides out a starved test machine.
	c.BroadcastTimeout = 20 * time.Second
	return c
}

// fastTiming shortens failure detection for tests that must outlast it.
func fastTiming(c *Config) {
	c.ProbeInterval = 250 * time.Millisecond
	c.ProbeTimeout = 150 * time.Millisecond
	c.SuspicionMult = 3
	c.SuspicionMaxTimeoutMult = 2
	c.GossipInterval = 100 * time.Millisecond
}

// failureBound is how long a failure may take to be reported with c among
// n members: every other member gets probed once per n intervals at worst
// (round-robin), then a full probe interval, then the longest suspicion,
// plus slack for the race detector and gossip.
func failureBound(c Config, n int) time.Duration {
	return detectTime(c, n) + 5*time.Second
}

// detectTime is failureBound without the slack.
func detectTime(c Config, n int) time.Duration {
	minSusp := time.Duration(c.SuspicionMult) * c.ProbeInterval // log10(n) <= 1 for n < 10
	return time.Duration(n+1)*c.ProbeInterval + time.Duration(c.SuspicionMaxTimeoutMult)*minSusp
}

// startNode starts a member with cfg and a recorder; the test closes it.
func startNode(t testing.TB, cfg Config) *node {
	t.Helper()
	return startNodeWith(t, cfg, newRecorder())
}

func startNodeWith(t testing.TB, cfg Config, rec *recorder) *node {
	t.Helper()
	n := &node{name: cfg.NodeName, rec: rec, logs: newLogSink()}
	cfg.Logger = slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := Start(cfg, n.rec)
	if err != nil {
		t.Fatalf("Start(%s): %v", cfg.NodeName, err)
	}
	n.g = g
	t.Cleanup(func() {
		_ = g.Shutdown()
		if t.Failed() {
			t.Logf("log of %s:\n%s", n.name, n.logs)
		}
		if n.rec.overlap.Load() {
			t.Errorf("%s: Handler calls overlapped", n.name)
		}
	})
	return n
}

// startCluster starts len(names) members, all joining the first.
func startCluster(t testing.TB, mod func(*Config), names ...string) []*node {
	t.Helper()
	nodes := make([]*node, len(names))
	for i, name := range names {
		cfg := testConfig(name, 7, uint32(100+i))
		if i > 0 {
			cfg.Join = []string{nodes[0].addr()}
		}
		if mod != nil {
			mod(&cfg)
		}
		nodes[i] = startNode(t, cfg)
	}
	return nodes
}

// waitConverged waits until every node's Handler saw every other come up.
func waitConverged(t testing.TB, nodes []*node, timeout time.Duration) {
	t.Helper()
	for _, n := range nodes {
		for _, o := range nodes {
			if n != o {
				n.rec.waitFor(t, timeout, "up", o.name, nil)
			}
		}
	}
}

func memberNamed(ms []Member, name string) (Member, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}
