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
	if Spin(p.Readable, time.Now(), 2*time.Millisecond) {
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
	if !Spin(p.Readable, time.Now(), 5*time.Second) {
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

// Spin gives up once the window since last has passed.
func TestSpinWindow(t *testing.T) {
	calls := 0
	start := time.Now()
	if Spin(func() bool { calls++; return false }, start.Add(-time.Hour), time.Millisecond) {
		t.Fatal("true from a window long past")
	}
	if calls != 0 {
		t.Fatalf("%d polls for a window long past, want 0", calls)
	}
	if Spin(func() bool { calls++; return false }, time.Now(), 3*time.Millisecond); calls == 0 {
		t.Fatal("no poll within the window")
	}
}
