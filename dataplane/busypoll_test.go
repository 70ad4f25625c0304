package dataplane_test

import (
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/dataplane/porttest"
	"github.com/vxswitch/vxswitch/fdb"
)

// TestBusyPoll: with Config.BusyPoll a reader that has read polls its
// queue's ReadReady instead of parking for as long as the switch has
// traffic (on any port), frames still flow, and all stop polling once the
// switch has been idle for the window; without BusyPoll, ReadReady is
// never called.
func TestBusyPoll(t *testing.T) {
	// The window is wide so that a scheduling gap on a loaded machine
	// (make test runs packages in parallel, with -race) does not make the
	// switch look idle between frames; frames come a sixth of it apart,
	// 18 of them, so a has traffic for three windows as before.
	for _, window := range []time.Duration{0, 200 * time.Millisecond} {
		gap := max(window/6, 5*time.Millisecond)
		ports := map[string]*porttest.Port{}
		sw := dataplane.New(dataplane.Config{
			Bridge:   "bp",
			FDB:      fdb.New(fdb.Config{}),
			BusyPoll: window,
			Open: func(pc dataplane.PortConfig) (dataplane.Port, error) {
				p := porttest.New()
				ports[pc.Name] = p
				return p, nil
			},
		})
		for _, name := range []string{"a", "b"} {
			if _, err := sw.AddPort(access(name, 7)); err != nil {
				t.Fatal(err)
			}
		}
		a, b := ports["a"], ports["b"]
		// One frame from b wakes b's reader; then only a has traffic, for
		// three windows.
		b.Inject(eth(macA, macB, -1, 46))
		select {
		case <-a.Written:
		case <-time.After(5 * time.Second):
			t.Fatalf("busy-poll %v: frame from b not forwarded", window)
		}
		frame := eth(macB, macA, -1, 46)
		var bMid uint64
		for i := range 18 {
			a.Inject(frame)
			select {
			case <-b.Written:
			case <-time.After(5 * time.Second):
				t.Fatalf("busy-poll %v: frame %d not forwarded", window, i)
			}
			time.Sleep(gap) // inside the window: the readers are polling
			if i == 12 {
				bMid = b.ReadReadyCalls.Load()
			}
		}
		calls := a.ReadReadyCalls.Load()
		if window == 0 {
			if calls != 0 || b.ReadReadyCalls.Load() != 0 {
				t.Errorf("busy-poll off: ReadReady called %d and %d times", calls, b.ReadReadyCalls.Load())
			}
		} else {
			if calls == 0 {
				t.Errorf("busy-poll %v: ReadReady never called", window)
			}
			// The window is the switch's: b, whose last frame is more
			// than a window old, still polls while a has traffic.
			if b.ReadReadyCalls.Load() == bMid {
				t.Errorf("busy-poll %v: b stopped polling while the switch had traffic", window)
			}
			time.Sleep(window + 20*time.Millisecond)
			settled, settledB := a.ReadReadyCalls.Load(), b.ReadReadyCalls.Load()
			time.Sleep(20 * time.Millisecond)
			if after := a.ReadReadyCalls.Load(); after != settled {
				t.Errorf("busy-poll %v: still polling %v after the last frame (%d -> %d calls)", window, window+40*time.Millisecond, settled, after)
			}
			if after := b.ReadReadyCalls.Load(); after != settledB {
				t.Errorf("busy-poll %v: b still polling %v after the switch's last frame", window, window+40*time.Millisecond)
			}
		}
		sw.Close()
	}
}
