package fdb

import (
	"context"
	"log/slog"
)

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

// noteMove counts a move against the rate limit of now's second and, if
// the limit allows, records it in buf. The caller holds t.mu for writing.
func (t *Table) noteMove(buf *moveBuf, k Key, from, to Dest, now int64) {
	if sec := now / 1e9; sec != t.logSec {
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
