package busypoll

import (
	"net"
	"testing"
	"time"
)

func TestProbeAndSpin(t *testing.T) {
	a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rc, err := a.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	p := NewProbe(rc)
	if p.Readable() {
		t.Fatal("empty socket reported readable")
	}
	act := NewActivity()
	act.Mark(time.Millisecond)
	if Spin(p.Readable, act, 2*time.Millisecond) {
		t.Fatal("Spin on an empty socket returned true")
	}
	b, err := net.DialUDP("udp4", nil, a.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	go func() {
		time.Sleep(time.Millisecond)
		b.Write([]byte("x"))
	}()
	act.Mark(time.Millisecond)
	if !Spin(p.Readable, act, 5*time.Second) {
		t.Fatal("Spin did not see the datagram")
	}
	if !p.Readable() {
		t.Fatal("socket with a datagram not readable")
	}
	if allocs := testing.AllocsPerRun(100, func() { p.Readable() }); allocs != 0 {
		t.Fatalf("Readable allocates %v per call", allocs)
	}
	a.Close()
	if !p.Readable() {
		t.Fatal("closed socket: want true so the caller reads and sees the error")
	}
}

// Spin gives up once the activity has been idle for the window, and does
// not poll at all for an activity never marked.
func TestSpinWindow(t *testing.T) {
	calls := 0
	poll := func() bool { calls++; return false }
	act := NewActivity()
	if Spin(poll, act, time.Hour) {
		t.Fatal("true from an idle activity")
	}
	if calls != 0 {
		t.Fatalf("%d polls for an activity never marked, want 0", calls)
	}
	act.Mark(3 * time.Millisecond)
	start := time.Now()
	if Spin(poll, act, 3*time.Millisecond); calls == 0 {
		t.Fatal("no poll within the window")
	}
	if since := time.Since(start); since < 2*time.Millisecond {
		t.Fatalf("Spin gave up after %v, before the 3 ms window", since)
	}
	calls = 0
	time.Sleep(5 * time.Millisecond)
	if Spin(poll, act, 3*time.Millisecond); calls != 0 {
		t.Fatalf("%d polls for a window past, want 0", calls)
	}
}

// Mark writes the shared word only when it is stale by window/8, and a
// mark keeps every Spin of the group polling.
func TestActivityMark(t *testing.T) {
	act := NewActivity()
	act.Mark(time.Hour)
	first := act.last.Load()
	if first == 0 {
		t.Fatal("Mark recorded nothing")
	}
	act.Mark(time.Hour)
	if got := act.last.Load(); got != first {
		t.Fatalf("Mark within window/8 rewrote the word: %d -> %d", first, got)
	}
	time.Sleep(2 * time.Millisecond)
	act.Mark(8 * time.Millisecond)
	if got := act.last.Load(); got == first {
		t.Fatal("Mark after window/8 did not move the time on")
	}
	if allocs := testing.AllocsPerRun(100, func() { act.Mark(time.Millisecond) }); allocs != 0 {
		t.Fatalf("Mark allocates %v per call", allocs)
	}
}
