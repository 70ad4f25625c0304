package gossip

import (
	"encoding/base64"
	"errors"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// converge bounds waits for joins and updates, which take well under a
// second; the margin is for a loaded machine under the race detector.
const converge = 20 * time.Second

func TestJoinThreeNodes(t *testing.T) {
	nodes := startCluster(t, nil, "a", "b", "c")
	waitConverged(t, nodes, converge)
	for _, n := range nodes {
		for _, o := range nodes {
			if n == o {
				continue
			}
			c := n.rec.waitFor(t, 0, "up", o.name, nil)
			want := Member{Name: o.name, Addr: o.g.Local().Addr, State: StateAlive, Meta: o.g.cfg.Meta}
			if c.m.Name != want.Name || c.m.Addr != want.Addr || c.m.State != want.State || !c.m.Meta.Equal(want.Meta) || c.m.MetaErr != nil {
				t.Errorf("%s saw MemberUp %+v, want %+v", n.name, c.m, want)
			}
		}
		if _, ok, _ := n.rec.find("up", n.name, nil); ok {
			t.Errorf("%s was told about itself", n.name)
		}
		ms := n.g.Members()
		var names []string
		for _, m := range ms {
			names = append(names, m.Name+"="+m.State)
		}
		if want := []string{"a=alive", "b=alive", "c=alive"}; !slices.Equal(names, want) {
			t.Errorf("%s.Members() = %v, want %v", n.name, names, want)
		}
	}
}

func TestUpdateVNIs(t *testing.T) {
	nodes := startCluster(t, nil, "a", "b", "c")
	waitConverged(t, nodes, converge)
	b := nodes[1]
	if err := b.g.UpdateVNIs([]uint32{220, 7, 5, 7}); err != nil {
		t.Fatalf("UpdateVNIs: %v", err)
	}
	want := []uint32{5, 7, 220}
	for _, n := range []*node{nodes[0], nodes[2]} {
		c := n.rec.waitFor(t, converge, "update", "b", func(m Member) bool { return slices.Equal(m.Meta.VNIs, want) })
		if c.m.Meta.VTEP != b.g.cfg.Meta.VTEP || c.m.State != StateAlive {
			t.Errorf("%s saw %v", n.name, c)
		}
	}
	if got := b.g.Local().Meta.VNIs; !slices.Equal(got, want) {
		t.Errorf("b.Local().Meta.VNIs = %v, want %v", got, want)
	}

	err := b.g.UpdateVNIs(vniRange(MaxVNIs + 1))
	if !errors.Is(err, ErrTooManyVNIs) {
		t.Errorf("UpdateVNIs(%d VNIs) = %v, want ErrTooManyVNIs", MaxVNIs+1, err)
	}
	if got := b.g.Local().Meta.VNIs; !slices.Equal(got, want) {
		t.Errorf("after a failed UpdateVNIs, b announces %v, want still %v", got, want)
	}
}

func TestLeave(t *testing.T) {
	nodes := startCluster(t, nil, "a", "b", "c")
	waitConverged(t, nodes, converge)
	c := nodes[2]
	start := time.Now()
	if err := c.g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("Close (leave) took %v", time.Since(start).Round(time.Millisecond))
	for _, n := range nodes[:2] {
		got := n.rec.waitFor(t, converge, "down", "c", nil)
		if got.m.State != StateLeft || !got.m.Meta.Equal(c.g.cfg.Meta) {
			t.Errorf("%s saw %v, want c left with its last meta", n.name, got)
		}
		m, ok := memberNamed(n.g.Members(), "c")
		if !ok || m.State != StateLeft {
			t.Errorf("%s.Members() has c = %+v (listed: %v), want state left", n.name, m, ok)
		}
	}
	if err := c.g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.g.UpdateVNIs([]uint32{1}); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateVNIs after Close = %v, want ErrClosed", err)
	}
	if err := c.g.Leave(time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Close = %v, want ErrClosed", err)
	}

	// Members forgets departures after DepartedTTL.
	a := nodes[0].g
	a.mu.Lock()
	a.now = func() time.Time { return time.Now().Add(a.cfg.DepartedTTL + time.Second) }
	a.mu.Unlock()
	if m, ok := memberNamed(a.Members(), "c"); ok {
		t.Errorf("a.Members() still lists %+v after DepartedTTL", m)
	}
}

func TestFailureDetected(t *testing.T) {
	nodes := startCluster(t, nil, "a", "b", "c") // lab DefaultConfig timing
	waitConverged(t, nodes, converge)
	c := nodes[2]
	start := time.Now()
	if err := c.g.Shutdown(); err != nil { // no Leave
		t.Fatal(err)
	}
	bound := failureBound(c.g.cfg, len(nodes))
	for _, n := range nodes[:2] {
		got := n.rec.waitFor(t, bound-time.Since(start), "down", "c", nil)
		if got.m.State != StateFailed {
			t.Errorf("%s saw %v, want c failed", n.name, got)
		}
		t.Logf("%s saw c failed after %v (bound %v)", n.name, time.Since(start).Round(time.Millisecond), bound)
		m, ok := memberNamed(n.g.Members(), "c")
		if !ok || m.State != StateFailed {
			t.Errorf("%s.Members() has c = %+v (listed: %v), want state failed", n.name, m, ok)
		}
	}
	if err := c.g.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestWrongKey(t *testing.T) {
	dir := t.TempDir()
	keyFile := func(name string, b byte) string {
		p := dir + "/" + name
		k := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune(b)), 32)))
		if err := os.WriteFile(p, []byte(k+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k1, k2 := keyFile("k1", 'a'), keyFile("k2", 'b')
	tests := []struct {
		name            string
		seedKey, joiner string
		seedLog         string // the seed's log says why
		joinErr         string // and so do the joiner's Join error and log
	}{
		{"different keys", k1, k2, "no installed keys could decrypt the message", "no installed keys could decrypt the message"},
		{"joiner without key", k1, "", "encryption is configured but remote state is not encrypted", "remote state is encrypted and encryption is not configured"},
		{"seed without key", "", k1, "remote state is encrypted and encryption is not configured", "encryption is configured but remote state is not encrypted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := testConfig("seed", 7)
			cs.KeyFile = tt.seedKey
			seed := startNode(t, cs)
			cj := testConfig("joiner", 7)
			cj.KeyFile = tt.joiner
			cj.Join = []string{seed.addr()}
			joiner := startNode(t, cj)

			// The background join from Config.Join fails, and says why.
			joiner.logs.waitFor(t, converge, "level=WARN", `msg="join failed; retrying"`, "component=gossip", seed.addr(), tt.joinErr)
			line := seed.logs.waitFor(t, converge, tt.seedLog)
			if !strings.Contains(line, "component=gossip") || !strings.Contains(line, "level=ERROR") {
				t.Errorf("seed log line lacks component=gossip or level=ERROR: %s", line)
			}
			// An explicit join fails too.
			if n, err := joiner.g.Join([]string{seed.addr()}); err == nil || !strings.Contains(err.Error(), tt.joinErr) {
				t.Errorf("Join with the wrong key: %d answered, error %v; want an error containing %q", n, err, tt.joinErr)
			}
			for _, p := range []struct{ n, other *node }{{seed, joiner}, {joiner, seed}} {
				if m, ok := memberNamed(p.n.g.Members(), p.other.name); ok {
					t.Errorf("%s admitted %+v", p.n.name, m)
				}
				if calls := p.n.rec.snapshot(); len(calls) > 0 {
					t.Errorf("%s Handler was called: %v", p.n.name, calls)
				}
			}
		})
	}
	t.Run("same key", func(t *testing.T) {
		cs := testConfig("seed", 7)
		cs.KeyFile = k1
		seed := startNode(t, cs)
		cj := testConfig("joiner", 7)
		cj.KeyFile = k1
		cj.Join = []string{seed.addr()}
		joiner := startNode(t, cj)
		waitConverged(t, []*node{seed, joiner}, converge)
		seed.logs.waitFor(t, 0, "encrypted=true")
	})
}

// TestBlockedHandler: a Handler that blocks does not block memberlist. While
// b's Handler is stuck, b still admits a new member through itself (a
// push/pull needs memberlist's node lock, which its callbacks hold), still
// announces new VNIs, still answers Members, and nobody reports it down for
// twice the time a failure takes to detect. Afterwards b's Handler gets
// what it missed, coalesced.
func TestBlockedHandler(t *testing.T) {
	ac := testConfig("a", 7)
	fastTiming(&ac)
	a := startNode(t, ac)

	entered, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	rec := newRecorder()
	var first atomic.Bool
	first.Store(true)
	rec.before = func(call) {
		if first.CompareAndSwap(true, false) {
			close(entered)
			<-release
		}
	}
	bc := testConfig("b", 7)
	fastTiming(&bc)
	bc.Join = []string{a.addr()}
	b := startNodeWith(t, bc, rec)
	t.Cleanup(unblock) // runs before b's Shutdown, which waits for the Handler
	select {
	case <-entered: // b's Handler is stuck in MemberUp(a) from here on
	case <-time.After(converge):
		t.Fatal("b's Handler was never called")
	}

	cc := testConfig("c", 7)
	fastTiming(&cc)
	cc.Join = []string{b.addr()} // through the blocked node
	c := startNode(t, cc)
	c.rec.waitFor(t, converge, "up", "a", nil)
	c.rec.waitFor(t, converge, "up", "b", nil)
	a.rec.waitFor(t, converge, "up", "c", nil)

	if err := b.g.UpdateVNIs([]uint32{7, 8}); err != nil {
		t.Fatalf("UpdateVNIs while the Handler blocks: %v", err)
	}
	for _, n := range []*node{a, c} {
		n.rec.waitFor(t, converge, "update", "b", func(m Member) bool { return slices.Equal(m.Meta.VNIs, []uint32{7, 8}) })
	}
	var names []string
	for _, m := range b.g.Members() {
		names = append(names, m.Name+"="+m.State)
	}
	if want := []string{"a=alive", "b=alive", "c=alive"}; !slices.Equal(names, want) {
		t.Errorf("b.Members() while blocked = %v, want %v", names, want)
	}

	hold := 2 * detectTime(bc, 3)
	deadline := time.After(hold)
	for held := false; !held; {
		_, aDown, aCh := a.rec.find("down", "b", nil)
		_, cDown, cCh := c.rec.find("down", "b", nil)
		if aDown || cDown {
			t.Fatalf("b reported down while only its Handler was blocked:\na:\n%sc:\n%s", a.rec, c.rec)
		}
		select {
		case <-aCh:
		case <-cCh:
		case <-deadline:
			held = true
		}
	}
	if got := b.rec.snapshot(); len(got) != 0 {
		t.Fatalf("b's Handler completed calls while blocked: %v", got)
	}

	unblock()
	b.rec.waitFor(t, converge, "up", "c", nil)
	var got []string
	for _, c := range b.rec.snapshot() {
		got = append(got, c.op+" "+c.m.Name)
	}
	if want := []string{"up a", "up c"}; !slices.Equal(got, want) {
		t.Errorf("b's Handler after release: %v, want %v", got, want)
	}
}

// TestUndecodableMeta: a member whose metadata we cannot read (say, a
// release with an incompatible encoding) is reported with MetaErr, so the
// agent can show it but build no tunnel.
func TestUndecodableMeta(t *testing.T) {
	nodes := startCluster(t, nil, "a", "b")
	waitConverged(t, nodes, converge)
	a, b := nodes[0], nodes[1]
	garbage := []byte{9, 1, 2, 3}
	b.g.metaBytes.Store(&garbage)
	if err := b.g.ml.UpdateNode(b.g.cfg.BroadcastTimeout); err != nil {
		t.Fatal(err)
	}
	c := a.rec.waitFor(t, converge, "update", "b", func(m Member) bool { return m.MetaErr != nil })
	if !strings.Contains(c.m.MetaErr.Error(), "unsupported version 9") || !c.m.Meta.Equal(Meta{}) {
		t.Errorf("a saw %v, want MetaErr about version 9 and a zero Meta", c)
	}
	a.logs.waitFor(t, converge, "member metadata undecodable", "member=b")
	if m, _ := memberNamed(a.g.Members(), "b"); m.MetaErr == nil {
		t.Errorf("a.Members() has b = %+v, want MetaErr", m)
	}
}

// TestShutdownStopsHandler: after Shutdown returns, our goroutines are gone
// and the Handler is not called again.
func TestShutdownStopsHandler(t *testing.T) {
	nodes := startCluster(t, nil, "a", "b", "c")
	waitConverged(t, nodes, converge)
	a := nodes[0]
	if err := a.g.Close(); err != nil {
		t.Fatal(err)
	}
	n := len(a.rec.snapshot())
	for _, o := range nodes[1:] {
		if err := o.g.UpdateVNIs([]uint32{42}); err != nil {
			t.Fatal(err)
		}
	}
	nodes[1].rec.waitFor(t, converge, "update", "c", func(m Member) bool { return slices.Equal(m.Meta.VNIs, []uint32{42}) })
	if got := a.rec.snapshot(); len(got) != n {
		t.Errorf("a's Handler called after Close: %v", got[n:])
	}

	// eventLoop is waited for by Shutdown; joinLoop ends on its own soon after.
	deadline := time.Now().Add(converge)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var ours []string
		for g := range strings.SplitSeq(stacks, "\n\n") {
			if strings.Contains(g, "gossip.(*Gossip).eventLoop") || strings.Contains(g, "gossip.(*Gossip).joinLoop") {
				ours = append(ours, g)
			}
		}
		// The other two members are still running: one eventLoop each, and
		// a joinLoop for the joiners b and c.
		if len(ours) <= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of our goroutines still running, want at most 4:\n%s", len(ours), strings.Join(ours, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond) // polling goroutine stacks; there is no event to wait for
	}
}

func TestStartErrors(t *testing.T) {
	badKey := writeFile(t, "bad.key", "not base64\n")
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"bind without port", func(c *Config) { c.Bind = "127.0.0.1" }, `gossip: bind "127.0.0.1"`},
		{"bind hostname", func(c *Config) { c.Bind = "localhost:7947" }, `gossip: bind "localhost:7947": want IP:port`},
		{"advertise", func(c *Config) { c.Advertise = "host.example" }, `gossip: advertise "host.example": want IP or IP:port`},
		{"key file", func(c *Config) { c.KeyFile = badKey }, "gossip key file " + badKey + ": not valid base64"},
		{"no VTEP", func(c *Config) { c.Meta.VTEP = netip.Addr{} }, "gossip meta: no VTEP address"},
		{"too many VNIs", func(c *Config) { c.Meta.VNIs = vniRange(200) }, "200 VNIs, at most 128"},
		{"address not local", func(c *Config) { c.Bind = "192.0.2.1:0" }, "gossip: listen on 192.0.2.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig("x", 7)
			tt.mod(&c)
			g, err := Start(c, nil)
			if err == nil {
				g.Shutdown()
				t.Fatalf("Start succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	host, _ := os.Hostname()
	c := Config{Meta: Meta{Bridge: "blue"}}.withDefaults()
	if c.NodeName != host+"-blue" || c.Bind != "0.0.0.0:7947" || c.DepartedTTL != 5*time.Minute {
		t.Errorf("withDefaults: NodeName %q Bind %q DepartedTTL %v", c.NodeName, c.Bind, c.DepartedTTL)
	}
	d := DefaultConfig()
	if c.ProbeInterval != d.ProbeInterval || c.SuspicionMaxTimeoutMult != d.SuspicionMaxTimeoutMult || c.Logger == nil {
		t.Errorf("withDefaults did not fill timing and logger: %+v", c)
	}
	mc, err := c.memberlistConfig()
	if err != nil {
		t.Fatal(err)
	}
	if mc.BindAddr != "0.0.0.0" || mc.BindPort != 7947 || mc.AdvertisePort != 7947 || mc.ProbeTimeout != d.ProbeTimeout || mc.Name != host+"-blue" {
		t.Errorf("memberlist config: bind %s:%d adv port %d probe timeout %v name %q", mc.BindAddr, mc.BindPort, mc.AdvertisePort, mc.ProbeTimeout, mc.Name)
	}
	c.Advertise = "192.0.2.7"
	if mc, err = c.memberlistConfig(); err != nil || mc.AdvertiseAddr != "192.0.2.7" || mc.AdvertisePort != 7947 {
		t.Errorf("advertise IP only: %v %s:%d", err, mc.AdvertiseAddr, mc.AdvertisePort)
	}
}
