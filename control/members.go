package control

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vxswitch/vxswitch/control/gossip"
	"github.com/vxswitch/vxswitch/overlay"
)

// leaveTimeout bounds the goodbye on stop, so that SIGTERM still stops the
// agent within a second; peers that miss it see a failure instead.
const leaveTimeout = 500 * time.Millisecond

// startGossip joins the gossip cluster of the gossip section. Members that
// share a VNI become tunnel destinations; when one leaves or fails it
// leaves the flood lists and its FDB entries are purged at once.
func (a *Agent) startGossip() error {
	gc := &a.cfg.Gossip
	if !gc.Enabled {
		return nil
	}
	if a.tunnel == nil {
		return fmt.Errorf("gossip: needs a vxlan section (members are VTEPs)")
	}
	v := &a.cfg.VXLAN
	cfg := gossip.Config{
		Join:     gc.Join,
		KeyFile:  gc.KeyFile,
		NodeName: gc.Name,
		Meta:     gossip.Meta{VTEP: v.Local, Port: v.Port, Bridge: a.cfg.Bridge, VNIs: a.sw.VNIs()},
		Logger:   a.log, // gossip adds component=gossip itself
	}
	if gc.Bind.IsValid() {
		cfg.Bind = gc.Bind.String()
	}
	switch {
	case gc.Advertise.IsValid():
		cfg.Advertise = gc.Advertise.String()
	case !gc.Bind.IsValid() || gc.Bind.Addr().IsUnspecified():
		// Others reach us where our VXLAN lives, not wherever memberlist
		// would guess from the host's interfaces.
		cfg.Advertise = v.Local.String()
	}
	h := &memberHandler{a: a, vtep: map[string]netip.Addr{}}
	g, err := gossip.Start(cfg, h)
	if err != nil {
		return err
	}
	a.gossip = g
	a.members = a.memberList
	return nil
}

// stopGossip says goodbye (briefly) and stops gossip.
func (a *Agent) stopGossip() error {
	if a.gossip == nil {
		return nil
	}
	_ = a.gossip.Leave(leaveTimeout) // not confirmed: the others see a failure
	return a.gossip.Shutdown()
}

// memberList is `vxswitch members`: this node first, then the others,
// including failed and departed ones gossip still remembers.
func (a *Agent) memberList() []MemberInfo {
	self := a.gossip.Local()
	out := []MemberInfo{memberInfo(self)}
	for _, m := range a.gossip.Members() {
		if m.Name != self.Name {
			out = append(out, memberInfo(m))
		}
	}
	return out
}

func memberInfo(m gossip.Member) MemberInfo {
	mi := MemberInfo{Name: m.Name, Address: m.Addr.Addr().String(), State: m.State, VNIs: m.Meta.VNIs}
	if m.Meta.VTEP.IsValid() {
		mi.Address = m.Meta.VTEP.String()
	}
	if mi.VNIs == nil {
		mi.VNIs = []uint32{}
	}
	return mi
}

// memberHandler turns gossip events into tunnel and FDB changes. Gossip
// calls it from one goroutine, so vtep needs no lock.
type memberHandler struct {
	a    *Agent
	vtep map[string]netip.Addr // member name -> VTEP it announced
}

func (h *memberHandler) MemberUp(m gossip.Member) { h.MemberUpdate(m) }

func (h *memberHandler) MemberUpdate(m gossip.Member) {
	if m.MetaErr != nil || !m.Meta.VTEP.IsValid() {
		h.a.log.Warn("gossip: member has no usable VTEP metadata; no tunnel", "member", m.Name, "err", m.MetaErr)
		h.MemberDown(m)
		return
	}
	if old, ok := h.vtep[m.Name]; ok && old != m.Meta.VTEP {
		h.drop(m.Name, old)
	}
	h.vtep[m.Name] = m.Meta.VTEP
	h.a.tunnel.AddVTEP(m.Meta.VTEP, m.Meta.Port, m.Meta.VNIs, overlay.SourceGossip)
}

func (h *memberHandler) MemberDown(m gossip.Member) {
	if addr, ok := h.vtep[m.Name]; ok {
		h.drop(m.Name, addr)
	}
}

// drop forgets a member's VTEP: out of the flood lists, and every FDB
// entry behind it purged at once.
func (h *memberHandler) drop(name string, addr netip.Addr) {
	delete(h.vtep, name)
	h.a.tunnel.RemoveVTEP(addr, overlay.SourceGossip)
	n := h.a.fdb.PurgeVTEP(addr)
	h.a.log.Info("gossip: member gone; VTEP removed", "member", name, "vtep", addr, "purged", n)
}
