package e2e

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
)

// TestTCPCoalesced sends a TCP stream through the real agents and checks
// that every byte arrives intact and that the internal ports wrote it to
// the receiving container as coalesced GSO frames (userspace GRO): the
// container's interface counts far fewer packets than the stream has
// segments. Both the tunnel (blue -> VXLAN -> green) and the local path
// (two containers on blue) are checked, at overlay MTU 1500, where a
// stream has the most segments to merge.
func TestTCPCoalesced(t *testing.T) {
	requireRoot(t)
	l := lab.ForTest(t)
	top, err := lab.TwoHosts(l, lab.Options{Containers: 2, MTU: 1500, Octet: lab.DemoOctet})
	if err != nil {
		t.Fatal(err)
	}
	vx := &lab.VXSwitch{Binary: vxBin}
	if err := vx.Setup(top); err != nil {
		t.Fatal(err)
	}
	if err := top.WaitConnected(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	blue, green := top.Hosts[0], top.Hosts[1]
	for _, tc := range []struct {
		name     string
		from, to *lab.Container
	}{
		{"tunnel", blue.Containers[0], green.Containers[0]},
		{"tunnel back", green.Containers[1], blue.Containers[1]},
		{"local", blue.Containers[0], blue.Containers[1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const size = 48 << 20
			rxBefore := ifCounter(t, l, tc.to, "rx_packets")
			sent, got := tcpTransfer(t, tc.from, tc.to, size)
			if sent != got {
				t.Fatalf("sha256 of the %d bytes sent %x, received %x", size, sent, got)
			}
			frames := ifCounter(t, l, tc.to, "rx_packets") - rxBefore
			segments := uint64(size / 1448)
			t.Logf("%d MB intact; %s received %d frames for about %d segments", size>>20, tc.to, frames, segments)
			if frames > segments/3 {
				t.Errorf("%s received %d frames for a %d-segment stream: the switch did not coalesce (want under %d)", tc.to, frames, segments, segments/3)
			}
		})
	}
}

// tcpTransfer sends size pseudo-random bytes over TCP from one container
// to another (sockets opened inside their namespaces) and returns the
// sha256 of what was sent and of what arrived.
func tcpTransfer(t *testing.T, from, to *lab.Container, size int) (sent, got [32]byte) {
	t.Helper()
	var ln net.Listener
	addr := net.JoinHostPort(to.Addr4.Addr().String(), "5301")
	if err := inNS(to.NS, func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		h := sha256.New()
		n, err := io.Copy(h, c)
		var r result
		copy(r.sum[:], h.Sum(nil))
		r.n, r.err = n, err
		done <- r
	}()
	var c net.Conn
	err := inNS(from.NS, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	rng := rand.NewChaCha8([32]byte{'v', 'x', 's', 'w'})
	buf := make([]byte, 1<<20)
	h := sha256.New()
	for left := size; left > 0; left -= len(buf) {
		_, _ = rng.Read(buf)
		if _, err := c.Write(buf); err != nil {
			c.Close()
			t.Fatalf("write: %v", err)
		}
		h.Write(buf)
	}
	c.Close()
	copy(sent[:], h.Sum(nil))
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("receive: %v after %d bytes", r.err, r.n)
		}
		if r.n != int64(size) {
			t.Fatalf("received %d bytes, sent %d", r.n, size)
		}
		return sent, r.sum
	case <-time.After(90 * time.Second):
		t.Fatal("receiver did not finish")
	}
	return sent, got
}

// ifCounter reads a statistics counter of a container's interface.
func ifCounter(t *testing.T, l *lab.Lab, c *lab.Container, name string) uint64 {
	t.Helper()
	s := sysCounter(t, l, c.NS, c.IfName, name)
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(fmt.Errorf("%s %s: %w", c, name, err))
	}
	return n
}
