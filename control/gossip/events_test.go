package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestDispatcher(t *testing.T) {
	addr := netip.MustParseAddrPort("127.0.0.2:7947")
	mem := func(state string, vnis ...uint32) Member {
		return Member{Name: "b", Addr: addr, State: state,
			Meta: Meta{VTEP: netip.MustParseAddr("192.0.2.2"), Port: 4789, VNIs: vnis}}
	}
	bad := Member{Name: "b", Addr: addr, State: StateAlive, MetaErr: errors.New("gossip meta: unsupported version 9")}
	type ev struct {
		m    Member
		down bool
	}
	up := func(m Member) ev { return ev{m, false} }
	down := func(m Member) ev { return ev{m, true} }
	tests := []struct {
		name    string
		batches [][]ev // each batch is pushed, then delivered
		want    []string
	}{
		{
			name:    "up update down one by one",
			batches: [][]ev{{up(mem(StateAlive, 7))}, {up(mem(StateAlive, 7, 8))}, {down(mem(StateLeft, 7, 8))}},
			want:    []string{"up b alive [7]", "update b alive [7 8]", "down b left [7 8]"},
		},
		{
			name:    "join and updates coalesce into one up",
			batches: [][]ev{{up(mem(StateAlive, 7)), up(mem(StateAlive, 7, 8)), up(mem(StateAlive, 9))}},
			want:    []string{"up b alive [9]"},
		},
		{
			name:    "came and went unseen",
			batches: [][]ev{{up(mem(StateAlive, 7)), down(mem(StateFailed, 7))}},
			want:    nil,
		},
		{
			name:    "down for a member never reported",
			batches: [][]ev{{down(mem(StateFailed, 7))}},
			want:    nil,
		},
		{
			name:    "restart between deliveries is down then up",
			batches: [][]ev{{up(mem(StateAlive, 7))}, {down(mem(StateFailed, 7)), up(mem(StateAlive, 7))}},
			want:    []string{"up b alive [7]", "down b failed [7]", "up b alive [7]"},
		},
		{
			name:    "same meta again is no update",
			batches: [][]ev{{up(mem(StateAlive, 7))}, {up(mem(StateAlive, 7))}},
			want:    []string{"up b alive [7]"},
		},
		{
			name:    "address change is an update",
			batches: [][]ev{{up(mem(StateAlive, 7))}, {up(func() Member { m := mem(StateAlive, 7); m.Addr = netip.MustParseAddrPort("127.0.0.3:7947"); return m }())}},
			want:    []string{"up b alive [7]", "update b alive [7]"},
		},
		{
			name:    "undecodable meta is reported, then repaired",
			batches: [][]ev{{up(bad)}, {up(mem(StateAlive, 7))}},
			want:    []string{"up b alive [] err=gossip meta: unsupported version 9", "update b alive [7]"},
		},
		{
			name:    "down twice is reported once",
			batches: [][]ev{{up(mem(StateAlive, 7))}, {down(mem(StateFailed, 7))}, {down(mem(StateLeft, 7))}},
			want:    []string{"up b alive [7]", "down b failed [7]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			q := newQueue()
			d := &dispatcher{h: rec, log: slog.New(slog.DiscardHandler), reported: make(map[string]Member)}
			for _, batch := range tt.batches {
				for _, e := range batch {
					q.push(e.m, e.down)
				}
				for _, p := range q.take() {
					d.deliver(p)
				}
			}
			var got []string
			for _, c := range rec.snapshot() {
				s := fmt.Sprintf("%s %s %s %v", c.op, c.m.Name, c.m.State, c.m.Meta.VNIs)
				if c.m.MetaErr != nil {
					s += " err=" + c.m.MetaErr.Error()
				}
				got = append(got, s)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Handler calls:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestQueueNeverBlocks: with nobody consuming, memberlist's callbacks
// still return at once, and the queue holds one entry per member.
func TestQueueNeverBlocks(t *testing.T) {
	q := newQueue()
	const members, events = 1000, 200_000
	start := time.Now()
	for i := range events {
		q.push(Member{Name: fmt.Sprintf("m%d", i%members), State: StateAlive}, i%3 == 0)
	}
	if len(q.pending) != members || len(q.order) != members {
		t.Errorf("pending %d, order %d; want %d each", len(q.pending), len(q.order), members)
	}
	batch := q.take()
	if len(batch) != members || batch[0].latest.Name != "m0" || batch[members-1].latest.Name != fmt.Sprintf("m%d", members-1) {
		t.Errorf("take returned %d entries, first %q; want %d in order of first event", len(batch), batch[0].latest.Name, members)
	}
	if b := q.take(); b != nil {
		t.Errorf("second take = %d entries, want none", len(b))
	}
	t.Logf("%d pushes in %v", events, time.Since(start))
}
