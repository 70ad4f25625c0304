package dataplane_test

import (
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/dataplane/porttest"
	"github.com/vxswitch/vxswitch/fdb"
)

// TestBusyPoll: with Config.BusyPoll a reader polls its queue's
// ReadReady after traffic instead of parking at once, frames still flow,
// and it stops polling once the window has passed; without BusyPoll,
// ReadReady is never called.
func TestBusyPoll(t *testing.T) {
	for _, window := range []time.Duration{0, 30 * time.Millisecond} {
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
		frame := eth(macB, macA, -1, 46)
		for i := range 3 {
			a.Inject(frame)
			select {
			case <-b.Written:
			case <-time.After(5 * time.Second):
				t.Fatalf("busy-poll %v: frame %d not forwarded", window, i)
			}
			time.Sleep(5 * time.Millisecond) // inside the window: the reader is polling
		}
		calls := a.ReadReadyCalls.Load()
		if window == 0 {
			if calls != 0 {
				t.Errorf("busy-poll off: ReadReady called %d times", calls)
			}
		} else {
			if calls == 0 {
				t.Errorf("busy-poll %v: ReadReady never called", window)
			}
			time.Sleep(window + 20*time.Millisecond)
			settled := a.ReadReadyCalls.Load()
			time.Sleep(20 * time.Millisecond)
			if after := a.ReadReadyCalls.Load(); after != settled {
				t.Errorf("busy-poll %v: still polling %v after the last frame (%d -> %d calls)", window, window+40*time.Millisecond, settled, after)
			}
		}
		sw.Close()
	}
}
