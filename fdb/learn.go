package fdb

import (
	"context"
	"log/slog"
)

// LearnBatch applies learn requests queued during a read-locked batch,
// under one write lock. Each request is checked again, as NeedsLearn would
// with the lock held for writing, because another batch may have learned
// the same MAC in between: duplicates and stale requests cost nothing.
// It does not allocate once ports and VTEPs have been seen, except to log
// a MAC move.
func (t *Table) LearnBatch(reqs []LearnReq, now int64) {
	if len(reqs) == 0 {
		return
	}
	var moves moveBuf
	t.mu.Lock()
	for i := range reqs {
		t.learn(reqs[i].Key, reqs[i].Dest, now, &moves)
	}
	t.mu.Unlock()
	if moves.n > 0 {
		t.logMoves(&moves)
	}
}

// Learn learns that k was seen on d at time now; it is LearnBatch for one
// request, with the same checks.
func (t *Table) Learn(k Key, d Dest, now int64) {
	var moves moveBuf
	t.mu.Lock()
	t.learn(k, d, now, &moves)
	t.mu.Unlock()
	if moves.n > 0 {
		t.logMoves(&moves)
	}
}

// learn applies one learn request. The caller holds t.mu for writing.
//
//   - multicast MAC, NoPort, static entry: nothing happens;
//   - k on d: refreshed (moved to its port's LRU head) if last seen in an
//     earlier second than now;
//   - k on another Dest: moved to d, counted and logged;
//   - k absent: learned, after making room (see makeRoom).
func (t *Table) learn(k Key, d Dest, now int64, moves *moveBuf) {
	if k.MAC.IsMulticast() || d.Port == NoPort {
		return
	}
	i, ok := t.index[k]
	if !ok {
		pi := t.portFor(d.Port)
		if !t.makeRoom(pi) {
			t.refused++
			return
		}
		t.insert(k, d, pi, false, now)
		t.learned++
		return
	}
	n := &t.nodes[i]
	if n.flags&flagStatic != 0 {
		return
	}
	if t.sameDest(n, d) {
		if now/1e9 > n.lastSeen/1e9 {
			pi := t.portOf(n.port)
			t.unlinkLRU(pi, i)
			n.lastSeen = now
			t.pushLRU(pi, i)
		}
		return
	}
	t.move(i, d, now, moves)
}

// move puts learned entry i on d, a Dest other than its own. A move onto a
// port at its mac-limit evicts that port's oldest entry first. The table
// size does not change.
func (t *Table) move(i int32, d Dest, now int64, moves *moveBuf) {
	n := &t.nodes[i]
	from := t.dest(n)
	oldPI := t.portOf(n.port)
	newPI := t.portFor(d.Port)
	t.unlinkLRU(oldPI, i)
	if newPI != oldPI {
		if ps := &t.ports[newPI]; ps.limit > 0 && ps.learned >= ps.limit {
			t.remove(ps.tail) // never i: i is in no list now
			t.evictions++
		}
	}
	t.releaseVTEP(n.vtep)
	n.vtep = t.acquireVTEP(d.VTEP)
	n.port = d.Port
	n.lastSeen = now
	t.pushLRU(newPI, i)
	t.moves++
	t.ports[newPI].moves++
	t.noteMove(moves, n.key, from, d, now)
}

// makeRoom frees a slot for a new learned entry on port pi, if needed: a
// port at its mac-limit gives up its own oldest entry; otherwise a full
// table gives up its victim (see victim). It reports false when the table
// is full of static entries.
func (t *Table) makeRoom(pi int) bool {
	if ps := &t.ports[pi]; ps.limit > 0 && ps.learned >= ps.limit {
		t.remove(ps.tail)
		t.evictions++
		return true
	}
	if t.count < t.size {
		return true
	}
	v := t.victim()
	if v == nilIdx {
		return false
	}
	t.remove(v)
	t.evictions++
	return true
}

// movesLoggedPerSec bounds the move log: a flapping MAC (a loop, or two
// hosts with one address) shows up in the log without flooding it.
const movesLoggedPerSec = 10

// moveRec is one move to log.
type moveRec struct {
	key        Key
	from, to   Dest
	suppressed uint64 // moves not logged before this one
}

// moveBuf collects the moves of one locked call so they are logged after
// the lock is released: a slow log handler must not stall the dataplane.
// It lives on the caller's stack.
type moveBuf struct {
	n    int
	recs [movesLoggedPerSec]moveRec
}

// noteMove counts a move against the rate limit of the current second and,
// if the limit allows, records it in buf. A batch that read the clock in
// the previous second counts against the current one. The caller holds
// t.mu for writing.
func (t *Table) noteMove(buf *moveBuf, k Key, from, to Dest, now int64) {
	if sec := now / 1e9; sec > t.logSec {
		t.logSec, t.logged = sec, 0
	}
	if t.logged >= movesLoggedPerSec || buf.n == len(buf.recs) {
		t.suppressed++
		return
	}
	t.logged++
	buf.recs[buf.n] = moveRec{key: k, from: from, to: to, suppressed: t.suppressed}
	t.suppressed = 0
	buf.n++
}

// logMoves writes the moves in buf. It allocates unless the logger
// discards Info, and runs without the table lock.
func (t *Table) logMoves(buf *moveBuf) {
	if !t.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	for i := range buf.n {
		r := &buf.recs[i]
		attrs := make([]slog.Attr, 0, 7)
		attrs = append(attrs,
			slog.String("mac", r.key.MAC.String()),
			slog.Int("vlan", int(r.key.VLAN)),
			slog.Int("from", int(r.from.Port)),
			slog.Int("to", int(r.to.Port)))
		if r.from.VTEP.IsValid() {
			attrs = append(attrs, slog.String("from_vtep", r.from.VTEP.String()))
		}
		if r.to.VTEP.IsValid() {
			attrs = append(attrs, slog.String("to_vtep", r.to.VTEP.String()))
		}
		if r.suppressed > 0 {
			attrs = append(attrs, slog.Uint64("suppressed", r.suppressed))
		}
		t.log.LogAttrs(context.Background(), slog.LevelInfo, "fdb: MAC moved", attrs...)
	}
}
