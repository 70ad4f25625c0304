package gossip

import (
	"net/netip"

	"github.com/hashicorp/memberlist"
)

// member converts a memberlist node; it copies everything it keeps.
// flags are the metaFlag bits of the node's metadata.
func member(n *memberlist.Node, state string) (m Member, flags byte) {
	m = Member{Name: n.Name, State: state}
	if a, ok := netip.AddrFromSlice(n.Addr); ok {
		m.Addr = netip.AddrPortFrom(a.Unmap(), n.Port)
	}
	m.Meta, flags, m.MetaErr = decodeMeta(n.Meta)
	return m, flags
}

func stateOf(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateSuspect:
		return StateSuspect
	case memberlist.StateDead:
		return StateFailed
	case memberlist.StateLeft:
		return StateLeft
	default:
		return StateAlive
	}
}

// eventDelegate receives memberlist's membership callbacks. They run with
// memberlist's node lock held, so they must not block or call memberlist:
// they copy the node and hand it to the queue.
type eventDelegate Gossip

var _ memberlist.EventDelegate = (*eventDelegate)(nil)

func (e *eventDelegate) NotifyJoin(n *memberlist.Node)   { e.arrive(n) }
func (e *eventDelegate) NotifyUpdate(n *memberlist.Node) { e.arrive(n) }

func (e *eventDelegate) arrive(n *memberlist.Node) {
	g := (*Gossip)(e)
	if n.Name == g.name {
		return
	}
	m, _ := member(n, stateOf(n.State))
	g.mu.Lock()
	delete(g.departed, n.Name)
	g.live[n.Name] = m
	g.mu.Unlock()
	g.q.push(m.clone(), false)
}

func (e *eventDelegate) NotifyLeave(n *memberlist.Node) {
	g := (*Gossip)(e)
	if n.Name == g.name {
		return
	}
	m, flags := member(n, StateFailed)
	if n.State == memberlist.StateLeft || flags&flagLeaving != 0 {
		m.State = StateLeft
	}
	g.mu.Lock()
	g.pruneLocked()
	delete(g.live, n.Name)
	g.departed[n.Name] = departure{m: m, at: g.now()}
	g.mu.Unlock()
	g.q.push(m.clone(), true)
}

// metaDelegate gives memberlist our metadata; the rest of
// memberlist.Delegate (user messages, state exchange) is unused.
type metaDelegate Gossip

var _ memberlist.Delegate = (*metaDelegate)(nil)

func (d *metaDelegate) NodeMeta(limit int) []byte {
	b := *(*Gossip)(d).metaBytes.Load()
	if len(b) > limit { // cannot happen: encodeMeta stays under MetaMaxSize
		return nil
	}
	return b
}

func (*metaDelegate) NotifyMsg([]byte)                  {}
func (*metaDelegate) GetBroadcasts(_, _ int) [][]byte   { return nil }
func (*metaDelegate) LocalState(bool) []byte            { return nil }
func (*metaDelegate) MergeRemoteState(_ []byte, _ bool) {}
