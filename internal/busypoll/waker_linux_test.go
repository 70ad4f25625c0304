package busypoll

import (
	"net"
	"syscall"
	"testing"
	"time"
)

func udpPair(t *testing.T) (*net.UDPConn, syscall.RawConn, *net.UDPConn) {
	t.Helper()
	a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	rc, err := a.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.DialUDP("udp4", nil, a.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, rc, b
}

// waitWoken runs Wait(tk) and says whether it returned within d, and
// what it returned.
func waitWoken(w *Waker, tk <-chan struct{}, d time.Duration) (woken, open bool) {
	r := make(chan bool, 1)
	go func() { r <- w.Wait(tk) }()
	select {
	case open = <-r:
		return true, open
	case <-time.After(d):
		return false, false
	}
}

// The waker wakes parked readers when a watched socket becomes readable,
// marks the activity, wakes them again while data stays unread once the
// window has passed (level-triggered: a wake-up between a reader's last
// poll and its Wait is not lost), ignores removed sockets, and releases
// everyone for good on Close. Wait itself gives up after a window.
func TestWaker(t *testing.T) {
	const window = 300 * time.Millisecond
	act := NewActivity()
	w, err := NewWaker(act, window)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	a, rcA, sendA := udpPair(t)
	_, rcB, sendB := udpPair(t)
	for _, rc := range []syscall.RawConn{rcA, rcB} {
		if err := w.Add(rc); err != nil {
			t.Fatal(err)
		}
	}

	tk := w.Ticket()
	if woken, _ := waitWoken(w, tk, 100*time.Millisecond); woken {
		t.Fatal("woken with nothing to read")
	}
	start := time.Now()
	if woken, open := waitWoken(w, tk, 5*time.Second); !woken || !open {
		t.Fatalf("nothing to read: Wait did not give up after the window (woken %v, open %v)", woken, open)
	}
	if since := time.Since(start); since < window/2 {
		t.Fatalf("Wait gave up after %v, window %v", since, window)
	}
	tk = w.Ticket()
	sendA.Write([]byte("x"))
	if woken, open := waitWoken(w, tk, window/2); !woken || !open {
		t.Fatalf("datagram on a: woken %v, open %v", woken, open)
	}
	if act.idleFor() >= window {
		t.Error("waker did not mark the activity")
	}
	// Nobody reads a's datagram: once the window has passed, the waker
	// wakes the readers again.
	tk = w.Ticket()
	time.Sleep(window / 2)
	if woken, _ := waitWoken(w, tk, window); !woken {
		t.Fatal("unread datagram: not woken again after the window")
	}
	if _, err := a.Read(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}

	w.Remove(rcB)
	time.Sleep(2 * window) // the switch is idle, the waker back waiting
	tk = w.Ticket()
	sendB.Write([]byte("y"))
	if woken, _ := waitWoken(w, tk, window/3); woken {
		t.Error("woken by a removed socket")
	}
	w.Kick()
	if woken, open := waitWoken(w, tk, window/3); !woken || !open {
		t.Errorf("Kick: woken %v, open %v", woken, open)
	}

	tk = w.Ticket()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if woken, open := waitWoken(w, tk, window/3); !woken || open {
		t.Errorf("Close: woken %v, open %v; want woken, closed", woken, open)
	}
	if woken, open := waitWoken(w, w.Ticket(), window/3); !woken || open {
		t.Errorf("after Close: woken %v, open %v; want at once, closed", woken, open)
	}
	if err := w.Add(rcA); err == nil {
		t.Error("Add after Close: no error")
	}
}

// Mark never moves the time back: a reader that took its time before a
// later Mark does not make the switch look idle.
func TestActivityMonotonic(t *testing.T) {
	act := NewActivity()
	act.last.Store(int64(time.Hour)) // a Mark from the future
	act.Mark(time.Millisecond)
	if got := act.last.Load(); got != int64(time.Hour) {
		t.Fatalf("Mark moved the time back: %v", time.Duration(got))
	}
}

// With a tiny window, Wait still sleeps minWaitGiveUp on an idle switch:
// parked readers must not spin.
func TestWakerTinyWindow(t *testing.T) {
	w, err := NewWaker(NewActivity(), time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	start := time.Now()
	if !w.Wait(w.Ticket()) {
		t.Fatal("Wait: closed")
	}
	if since := time.Since(start); since < minWaitGiveUp/2 {
		t.Fatalf("Wait with a 1 µs window gave up after %v, want about %v", since, minWaitGiveUp)
	}
}
