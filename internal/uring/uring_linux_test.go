package uring

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func newRing(t testing.TB, n uint32) *Ring {
	t.Helper()
	r, err := New(n)
	if errors.Is(err, ErrUnsupported) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func iov(b []byte) unix.Iovec {
	v := unix.Iovec{Base: unsafe.SliceData(b)}
	v.SetLen(len(b))
	return v
}

// TestWritevPipe writes a batch through a pipe in one Submit: every
// request completes, with its user value and length, and the bytes
// arrive in order. A request on a bad fd fails alone.
func TestWritevPipe(t *testing.T) {
	r := newRing(t, 8)
	if r.Entries() < 8 {
		t.Fatalf("Entries = %d, want at least 8", r.Entries())
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	parts := [][]byte{[]byte("one "), []byte("two "), []byte("three")}
	iovs := make([][2]unix.Iovec, len(parts))
	for round := range 3 { // the ring's slots are reused
		want := map[uint64]int32{}
		for i, p := range parts {
			iovs[i] = [2]unix.Iovec{iov(p[:1]), iov(p[1:])}
			if !r.Writev(fds[1], &iovs[i][0], 2, uint64(100+i)) {
				t.Fatalf("round %d: Writev %d refused", round, i)
			}
			want[uint64(100+i)] = int32(len(p))
		}
		var bad [1]unix.Iovec
		bad[0] = iov([]byte("x"))
		r.Writev(-1, &bad[0], 1, 7)
		want[7] = -int32(unix.EBADF)
		if r.Queued() != 4 {
			t.Fatalf("Queued = %d, want 4", r.Queued())
		}
		got := map[uint64]int32{}
		n, err := r.Submit(func(u uint64, res int32) { got[u] = res })
		if n != 4 || err != nil {
			t.Fatalf("round %d: Submit = %d, %v", round, n, err)
		}
		for u, w := range want {
			if got[u] != w {
				t.Errorf("round %d: request %d: res %d, want %d", round, u, got[u], w)
			}
		}
		buf := make([]byte, 64)
		m, _ := unix.Read(fds[0], buf)
		if !bytes.Equal(buf[:m], []byte("one two three")) {
			t.Errorf("round %d: pipe has %q", round, buf[:m])
		}
	}
	if n, err := r.Submit(func(uint64, int32) { t.Error("completion of nothing") }); n != 0 || err != nil {
		t.Errorf("empty Submit = %d, %v", n, err)
	}
}

// TestRingFull: Writev refuses more than Entries requests before Submit.
func TestRingFull(t *testing.T) {
	r := newRing(t, 4)
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	v := iov([]byte("a"))
	for i := range r.Entries() {
		if !r.Writev(fds[1], &v, 1, uint64(i)) {
			t.Fatalf("Writev %d of %d refused", i, r.Entries())
		}
	}
	if r.Writev(fds[1], &v, 1, 99) {
		t.Fatal("Writev past Entries accepted")
	}
	if n, err := r.Submit(func(uint64, int32) {}); n != r.Entries() || err != nil {
		t.Fatalf("Submit = %d, %v", n, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestReadvPipe reads from a non-blocking pipe: requests run in order,
// those that find it empty complete with -EAGAIN without blocking.
func TestReadvPipe(t *testing.T) {
	r := newRing(t, 8)
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if _, err := unix.Write(fds[1], []byte("abcdef")); err != nil {
		t.Fatal(err)
	}
	bufs := make([][]byte, 4)
	iovs := make([]unix.Iovec, 4)
	for i := range bufs {
		bufs[i] = make([]byte, 4)
		iovs[i] = iov(bufs[i])
		r.Readv(fds[0], &iovs[i], 1, uint64(i))
	}
	res := make([]int32, 4)
	if n, err := r.Submit(func(u uint64, v int32) { res[u] = v }); n != 4 || err != nil {
		t.Fatalf("Submit = %d, %v", n, err)
	}
	want := []int32{4, 2, -int32(unix.EAGAIN), -int32(unix.EAGAIN)}
	for i := range want {
		if res[i] != want[i] {
			t.Errorf("request %d: res %d, want %d (all: %v)", i, res[i], want[i], res)
		}
	}
	if string(bufs[0]) != "abcd" || string(bufs[1][:2]) != "ef" {
		t.Errorf("read %q, %q", bufs[0], bufs[1][:2])
	}
}
