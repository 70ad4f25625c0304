package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrClosed is returned by UpdateVNIs and Join after Leave, Shutdown or
// Close, and by Leave after Shutdown.
var ErrClosed = errors.New("gossip: closed")

// Gossip is this node's membership in the cluster. Its methods are safe
// for concurrent use.
type Gossip struct {
	cfg  Config
	log  *slog.Logger
	name string
	ml   *memberlist.Memberlist // set once by Start

	// metaBytes is what NodeMeta hands memberlist. memberlist calls NodeMeta
	// with its own locks held, from UpdateNode among others, so it is an
	// atomic and not guarded by opMu.
	metaBytes atomic.Pointer[[]byte]

	opMu   sync.Mutex           // serialises UpdateVNIs, Leave, Shutdown; guards closed
	closed bool                 // Shutdown was called: memberlist must not be used
	meta   atomic.Pointer[Meta] // what metaBytes encodes; written under opMu
	left   atomic.Bool
	addr   netip.AddrPort // our gossip address, as advertised; fixed at Start

	q *queue // memberlist callbacks -> eventLoop

	// Our own copy of the membership, written by memberlist's callbacks
	// (under its node lock, so the copy is consistent). Members reads this,
	// not ml.Members: that returns pointers into memberlist's state, which
	// memberlist keeps changing after it lets go of its lock.
	mu       sync.Mutex // guards live, departed, now
	live     map[string]Member
	departed map[string]departure
	now      func() time.Time // time.Now; tests change it

	shutdownOnce sync.Once
	shutdownErr  error
	done         chan struct{} // closed by Shutdown
	wg           sync.WaitGroup
}

// departure is a member memberlist reported gone, kept for Members.
type departure struct {
	m  Member
	at time.Time
}

// Start creates this node's memberlist on cfg.Bind, announcing cfg.Meta,
// and joins cfg.Join in the background: a seed that is not up yet is
// retried (1 s doubling to 30 s, logged), and so are the seeds whenever
// this node finds itself alone again. Start fails only on a bad
// configuration (bind, advertise, key file, meta) or when it cannot listen.
// h may be nil.
func Start(cfg Config, h Handler) (*Gossip, error) {
	cfg = cfg.withDefaults()
	cfg.Logger = cfg.Logger.With("component", "gossip")
	mc, err := cfg.memberlistConfig()
	if err != nil {
		return nil, err
	}
	b, err := encodeMeta(cfg.Meta, 0)
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = nopHandler{}
	}
	g := &Gossip{
		cfg:      cfg,
		log:      cfg.Logger,
		name:     cfg.NodeName,
		q:        newQueue(),
		live:     make(map[string]Member),
		departed: make(map[string]departure),
		now:      time.Now,
		done:     make(chan struct{}),
	}
	meta := cfg.Meta
	meta.VNIs = canonicalVNIs(meta.VNIs)
	g.meta.Store(&meta)
	g.metaBytes.Store(&b)
	mc.Delegate = (*metaDelegate)(g)
	mc.Events = (*eventDelegate)(g)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: listen on %s: %w", cfg.Bind, err)
	}
	g.ml = ml
	// Safe to read: only Create and our own UpdateNode calls change the
	// local node's address (and they do not, after Create).
	local, _ := member(ml.LocalNode(), StateAlive)
	g.addr = local.Addr

	g.wg.Add(1)
	go g.eventLoop(&dispatcher{h: h, log: g.log, reported: make(map[string]Member)})
	if len(cfg.Join) > 0 {
		// Not in wg: a join in flight cannot be cancelled (memberlist's
		// Join has no context) and Shutdown should not wait TCPTimeout for
		// it. It ends when that attempt does, and does nothing after done.
		go g.joinLoop()
	}
	g.log.Info("gossip started", "node", g.name, "addr", g.addr,
		"encrypted", len(mc.SecretKey) > 0, "vtep", meta.VTEP, "vnis", meta.VNIs, "join", cfg.Join)
	return g, nil
}

// Local returns this node as the others see it.
func (g *Gossip) Local() Member {
	state := StateAlive
	if g.left.Load() {
		state = StateLeft
	}
	m := Member{Name: g.name, Addr: g.addr, State: state, Meta: *g.meta.Load()}
	return m.clone()
}

// clone returns m with its own copy of the VNIs, so callers cannot change
// what we keep.
func (m Member) clone() Member {
	m.Meta.VNIs = slices.Clone(m.Meta.VNIs)
	return m
}

// Members returns this node and every member it knows of, including those
// that failed or left in the last Config.DepartedTTL, sorted by name.
//
// StateSuspect does not occur with memberlist v0.7.0: it neither reports
// suspicion to an EventDelegate nor fills in Node.State
// (hashicorp/memberlist#293), so a suspect member is listed alive until it
// is declared failed.
func (g *Gossip) Members() []Member {
	self := g.Local()
	g.mu.Lock()
	g.pruneLocked()
	out := make([]Member, 0, 1+len(g.live)+len(g.departed))
	out = append(out, self)
	for _, m := range g.live {
		out = append(out, m.clone())
	}
	for _, d := range g.departed {
		out = append(out, d.m.clone())
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// pruneLocked forgets departures older than DepartedTTL. g.mu is held.
func (g *Gossip) pruneLocked() {
	cutoff := g.now().Add(-g.cfg.DepartedTTL)
	for name, d := range g.departed {
		if d.at.Before(cutoff) {
			delete(g.departed, name)
		}
	}
}

// UpdateVNIs announces a new set of VNIs; the others see MemberUpdate. It
// waits up to Config.BroadcastTimeout for the news to go out; on a timeout
// the new VNIs are still announced and keep spreading, and the error says so.
func (g *Gossip) UpdateVNIs(vnis []uint32) error {
	g.opMu.Lock()
	defer g.opMu.Unlock()
	if g.closed || g.left.Load() {
		return ErrClosed
	}
	meta := *g.meta.Load()
	meta.VNIs = canonicalVNIs(vnis)
	b, err := encodeMeta(meta, 0)
	if err != nil {
		return err
	}
	g.meta.Store(&meta)
	g.metaBytes.Store(&b)
	if err := g.ml.UpdateNode(g.cfg.BroadcastTimeout); err != nil {
		return fmt.Errorf("gossip: VNIs %v announced but not yet fully broadcast: %w", meta.VNIs, err)
	}
	g.log.Info("VNIs updated", "vnis", meta.VNIs)
	return nil
}

// Join contacts seeds (host or host:port) now and returns how many
// answered; the error says why each failed, e.g. a key mismatch. Start
// already joins Config.Join; this is for joining more.
func (g *Gossip) Join(seeds []string) (int, error) {
	g.opMu.Lock()
	closed := g.closed || g.left.Load()
	g.opMu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	n, err := g.ml.Join(seeds)
	if err != nil {
		return n, fmt.Errorf("gossip: join %v: %w", seeds, flatten(err))
	}
	return n, nil
}

// Leave tells the others this node is leaving, so they report it StateLeft
// rather than StateFailed, and waits up to timeout (<= 0: BroadcastTimeout)
// for that to go out. The node keeps answering probes until Shutdown.
// Calling Leave again does nothing.
func (g *Gossip) Leave(timeout time.Duration) error {
	g.opMu.Lock()
	defer g.opMu.Unlock()
	if g.closed {
		return ErrClosed
	}
	if g.left.Load() {
		return nil
	}
	g.left.Store(true)
	if timeout <= 0 {
		timeout = g.cfg.BroadcastTimeout
	}
	deadline := time.Now().Add(timeout)

	// memberlist v0.7.0 does not tell an EventDelegate whether a member
	// left or failed (hashicorp/memberlist#293), so first mark our meta
	// "leaving" and let that spread; memberlist's own leave (a "dead"
	// message about ourselves) follows. Half the time for each.
	var errs []error
	b, err := encodeMeta(*g.meta.Load(), flagLeaving)
	if err != nil {
		return err // cannot happen: g.meta was encoded before
	}
	g.metaBytes.Store(&b)
	if err := g.ml.UpdateNode(timeout / 2); err != nil {
		errs = append(errs, fmt.Errorf("announce leaving: %w", err))
	}
	// A zero timeout means "forever" to memberlist.
	if err := g.ml.Leave(max(time.Until(deadline), time.Millisecond)); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		g.log.Warn("leave not confirmed; the others may report this node failed", "err", err)
		return fmt.Errorf("gossip: leave: %w", err)
	}
	g.log.Info("left the cluster")
	return nil
}

// Shutdown stops gossip without leaving: the others will report this node
// failed once their probes time out. It waits for a Handler call in
// progress to return; no Handler call starts after it returns.
// Calling it again does nothing.
func (g *Gossip) Shutdown() error {
	g.shutdownOnce.Do(func() {
		g.opMu.Lock()
		g.closed = true
		g.opMu.Unlock()
		g.shutdownErr = g.ml.Shutdown()
		close(g.done)
		g.wg.Wait()
		g.log.Info("gossip stopped")
	})
	return g.shutdownErr
}

// Close leaves (waiting up to Config.BroadcastTimeout), then shuts down.
// It is idempotent; the error reports a leave that was not confirmed.
func (g *Gossip) Close() error {
	err := g.Leave(g.cfg.BroadcastTimeout)
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	return errors.Join(err, g.Shutdown())
}

// eventLoop is the one goroutine that calls the Handler.
func (g *Gossip) eventLoop(d *dispatcher) {
	defer g.wg.Done()
	for {
		select {
		case <-g.done:
			return
		case <-g.q.wake:
		}
		for _, p := range g.q.take() {
			select {
			case <-g.done:
				return
			default:
			}
			d.deliver(p)
		}
	}
}
