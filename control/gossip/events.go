package gossip

import (
	"log/slog"
	"net/netip"
	"sync"
)

// Member states, as in Member.State.
const (
	StateAlive   = "alive"
	StateSuspect = "suspect" // not produced with memberlist v0.7.0; see Members
	StateFailed  = "failed"  // stopped answering probes and did not leave
	StateLeft    = "left"    // said goodbye (Leave or Close)
)

// A Member is one gossip member as this node sees it.
type Member struct {
	Name  string
	Addr  netip.AddrPort // gossip address, not the VTEP
	State string         // StateAlive, StateSuspect, StateFailed or StateLeft
	Meta  Meta           // zero when MetaErr is set
	// MetaErr says why the member's metadata could not be decoded, e.g.
	// an incompatible release. Such a member must not get a tunnel.
	MetaErr error
}

// A Handler learns about the other members; the local node is never
// reported. All calls come from one goroutine owned by the Gossip, one at a
// time and in order for each member, never from memberlist's callbacks, so a
// Handler may block (on a lock, the FDB, netlink): memberlist keeps probing
// and answering meanwhile, and what happens while it blocks is coalesced
// per member: the Handler then sees the latest state, plus a MemberDown
// before the MemberUp if the member went away and came back.
//
// A Handler must not call Leave, Shutdown or Close (they wait for it).
type Handler interface {
	// MemberUp: a member appeared. Check MetaErr before building a tunnel.
	MemberUp(m Member)
	// MemberUpdate: a member reported by MemberUp changed its address or
	// metadata (e.g. UpdateVNIs), or its metadata became (un)decodable.
	MemberUpdate(m Member)
	// MemberDown: a member reported by MemberUp left (State StateLeft) or
	// failed (StateFailed). Meta is its last metadata.
	MemberDown(m Member)
}

// pending is what the queue holds for one member between deliveries.
type pending struct {
	latest Member
	down   bool    // latest is a departure
	downAt *Member // a departure overtaken by a later arrival (restart)
}

// queue decouples memberlist's callbacks, which run under memberlist's node
// lock and must not block, from the Handler. It coalesces by member name:
// each name holds one pending entry whatever the number of events, so the
// queue never blocks and never drops, and its size is bounded by the
// number of members memberlist itself keeps in memory. (The alternative, a
// bounded channel whose overflow triggers a resync from ml.Members, loses
// the left-or-failed distinction, which memberlist only tells in the
// moment, and costs a full diff under load.)
type queue struct {
	mu      sync.Mutex // guards pending and order
	pending map[string]*pending
	order   []string      // names in pending, by first event, for fairness
	wake    chan struct{} // capacity 1: "pending is not empty"
}

func newQueue() *queue {
	return &queue{pending: make(map[string]*pending), wake: make(chan struct{}, 1)}
}

// push records an event. It never blocks.
func (q *queue) push(m Member, down bool) {
	q.mu.Lock()
	p := q.pending[m.Name]
	if p == nil {
		p = &pending{}
		q.pending[m.Name] = p
		q.order = append(q.order, m.Name)
	}
	if !down && p.down {
		d := p.latest
		p.downAt = &d
	}
	p.latest, p.down = m, down
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take removes and returns everything pending, in order of first event.
func (q *queue) take() []*pending {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		return nil
	}
	batch := make([]*pending, len(q.order))
	for i, name := range q.order {
		batch[i] = q.pending[name]
	}
	clear(q.pending)
	q.order = q.order[:0]
	return batch
}

// dispatcher turns coalesced events into Handler calls. It remembers what
// the Handler was told, so a Handler sees MemberUpdate only for a member it
// saw come up, MemberDown only once, and nothing for a member that came and
// went between two deliveries. Only the event loop goroutine uses it.
type dispatcher struct {
	h        Handler
	log      *slog.Logger
	reported map[string]Member
}

func (d *dispatcher) deliver(p *pending) {
	name := p.latest.Name
	prev, known := d.reported[name]
	if p.down {
		if known {
			delete(d.reported, name)
			d.down(p.latest)
		}
		return
	}
	if p.downAt != nil && known {
		delete(d.reported, name)
		d.down(*p.downAt)
		known = false
	}
	m := p.latest
	d.reported[name] = m
	switch {
	case !known:
		d.log.Info("member up", memberAttrs(m)...)
		d.warnMeta(m)
		d.h.MemberUp(m)
	case changed(prev, m):
		d.log.Info("member updated", memberAttrs(m)...)
		d.warnMeta(m)
		d.h.MemberUpdate(m)
	}
}

func (d *dispatcher) down(m Member) {
	d.log.Info("member down", memberAttrs(m)...)
	d.h.MemberDown(m)
}

func (d *dispatcher) warnMeta(m Member) {
	if m.MetaErr != nil {
		d.log.Warn("member metadata undecodable; no tunnel to it", "member", m.Name, "addr", m.Addr, "err", m.MetaErr)
	}
}

func changed(a, b Member) bool {
	return a.Addr != b.Addr || !a.Meta.Equal(b.Meta) || errString(a.MetaErr) != errString(b.MetaErr)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func memberAttrs(m Member) []any {
	a := []any{"member", m.Name, "addr", m.Addr, "state", m.State}
	if m.MetaErr == nil {
		a = append(a, "vtep", m.Meta.VTEP, "vnis", m.Meta.VNIs)
	}
	return a
}

// nopHandler is used when Start is given a nil Handler.
type nopHandler struct{}

func (nopHandler) MemberUp(Member)     {}
func (nopHandler) MemberUpdate(Member) {}
func (nopHandler) MemberDown(Member)   {}
