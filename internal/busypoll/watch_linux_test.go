package busypoll

import (
	"testing"
)

// TestWatch: a member sees the others' frames, not its own; a frame read
// is no longer seen (level-triggered: nothing is consumed by asking); a
// removed member is not seen, nor is one whose socket closed.
func TestWatch(t *testing.T) {
	w, err := NewWatch(false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	a, arc, toA := udpPair(t)
	b, brc, toB := udpPair(t)
	_, crc, _ := udpPair(t)
	ma, err := w.Add(arc, 1)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := w.Add(brc, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Add(crc, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Add(arc, 4); err == nil {
		t.Error("adding an fd twice: no error")
	}
	check := func(when string, wantA, wantB bool) {
		t.Helper()
		if got := ma.OthersReady(); got != wantA {
			t.Errorf("%s: a.OthersReady() = %v, want %v", when, got, wantA)
		}
		if got := mb.OthersReady(); got != wantB {
			t.Errorf("%s: b.OthersReady() = %v, want %v", when, got, wantB)
		}
	}
	check("nothing sent", false, false)
	if _, err := toA.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	check("a has a datagram", false, true)
	check("asked again", false, true)
	if _, err := toB.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	check("both have one", true, true)
	buf := make([]byte, 16)
	if _, err := a.Read(buf); err != nil {
		t.Fatal(err)
	}
	check("a's read", true, false)
	mb.Remove()
	check("b removed", false, false)
	if _, err := b.Read(buf); err != nil {
		t.Fatal(err)
	}
	toA.Write([]byte("z"))
	a.Close() // closing the fd takes it out of the epoll instance
	check("a closed", false, false)
	ma.Remove() // a closed fd: nothing to do, no panic
	ma.Yield()  // removed: returns at once
}

func TestWatchAllocs(t *testing.T) {
	for _, spinning := range []bool{false, true} {
		watchAllocs(t, spinning)
	}
}

func watchAllocs(t *testing.T, spinning bool) {
	w, err := NewWatch(spinning)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, arc, _ := udpPair(t)
	_, brc, toB := udpPair(t)
	ma, err := w.Add(arc, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Add(brc, 2); err != nil {
		t.Fatal(err)
	}
	toB.Write([]byte("x"))
	if n := testing.AllocsPerRun(100, func() {
		if !ma.OthersReady() {
			t.Fatal("b's datagram not seen")
		}
	}); n != 0 {
		t.Errorf("OthersReady allocates %.1f times", n)
	}
	if n := testing.AllocsPerRun(20, ma.Yield); n != 0 {
		t.Errorf("Yield (spinning %v) allocates %.1f times", spinning, n)
	}
}
