package dataplane

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/mmsg"
	"github.com/vxswitch/vxswitch/internal/testutil"
)

// System-port (AF_PACKET) tests; they need root. Helpers are in
// port_helpers_test.go, pure unit tests in port_vlan_test.go.

func TestSystemReadWrite(t *testing.T) {
	local, peer, ns := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{})
	fd := ptPacketSocket(t, ns, peer)

	// In: frames sent in the namespace come out of ReadBatch whole and in
	// order, several per batch.
	const n = 100
	var sent [][]byte
	for i := range n {
		sent = append(sent, ptFrame(t, ptMACB, ptMACA, 60+i*10, uint32(i)))
	}
	ptSend(t, fd, sent...)
	got := ptReadFrames(t, p, 2048, n, ptIsTest)
	for i := range got {
		if !bytes.Equal(got[i], sent[i]) {
			t.Fatalf("frame %d: got %d bytes seq %d, want %d bytes seq %d", i, len(got[i]), ptSeq(got[i]), len(sent[i]), i)
		}
	}

	// Out: a WriteBatch larger than one batch arrives in the namespace.
	var out [][]byte
	for i := range 150 {
		out = append(out, ptFrame(t, ptMACA, ptMACB, 64+i, uint32(1000+i)))
	}
	if m, err := p.WriteBatch(out); m != len(out) || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want %d, nil", m, err, len(out))
	}
	for i := range out {
		f := ptRecv(t, fd, ptIsTest)
		if !bytes.Equal(f, out[i]) {
			t.Fatalf("frame %d in netns: got seq %d len %d, want seq %d len %d", i, ptSeq(f), len(f), 1000+i, len(out[i]))
		}
	}
	if d := p.DropCounts(); d != (PortDrops{}) {
		t.Errorf("drops %+v, want none", d)
	}
}

func TestSystemJumbo(t *testing.T) {
	local, peer, ns := ptVeth(t, 9000)
	p := ptOpenSystem(t, local, SystemOptions{})
	fd := ptPacketSocket(t, ns, peer)
	in := ptFrame(t, ptMACB, ptMACA, 9014, 1)
	ptSend(t, fd, in)
	got := ptReadFrames(t, p, 9014, 1, ptIsTest)
	if !bytes.Equal(got[0], in) {
		t.Fatalf("jumbo in: got %d bytes, want %d", len(got[0]), len(in))
	}
	out := ptFrame(t, ptMACA, ptMACB, 9014, 2)
	if m, err := p.WriteBatch([][]byte{out}); m != 1 || err != nil {
		t.Fatalf("WriteBatch jumbo = %d, %v", m, err)
	}
	if f := ptRecv(t, fd, ptIsTest); !bytes.Equal(f, out) {
		t.Fatalf("jumbo out: got %d bytes, want %d", len(f), len(out))
	}
	// Over the MTU: refused by the kernel, skipped and counted, and the
	// frame behind it still goes.
	big := ptFrame(t, ptMACA, ptMACB, 9100, 3)
	if m, err := p.WriteBatch([][]byte{big, out}); m != 1 || err != nil {
		t.Fatalf("WriteBatch over MTU = %d, %v; want 1, nil", m, err)
	}
	if d := p.DropCounts(); d.TxError != 1 {
		t.Fatalf("drops %+v, want TxError 1", d)
	}
}

func TestSystemTooBigDropped(t *testing.T) {
	local, peer, ns := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{})
	fd := ptPacketSocket(t, ns, peer)
	small := ptFrame(t, ptMACB, ptMACA, 100, 2)
	ptSend(t, fd, ptFrame(t, ptMACB, ptMACA, 1000, 1), small)
	// 256-byte buffers: the 1000-byte frame is dropped, not truncated.
	got := ptReadFrames(t, p, 256, 1, ptIsTest)
	if !bytes.Equal(got[0], small) {
		t.Fatalf("got seq %d len %d, want the 100-byte frame", ptSeq(got[0]), len(got[0]))
	}
	if d := p.DropCounts(); d.RxTooBig != 1 {
		t.Fatalf("drops %+v, want RxTooBig 1", d)
	}
}

func TestSystemIgnoresOwnFrames(t *testing.T) {
	local, peer, ns := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{})
	fd := ptPacketSocket(t, ns, peer)
	// Broadcast frames, so the peer's kernel would not reflect them.
	var own [][]byte
	for i := range 10 {
		own = append(own, ptFrame(t, ptMACA, layers.EthernetBroadcast, 64, uint32(i)))
	}
	if m, err := p.WriteBatch(own); m != len(own) || err != nil {
		t.Fatalf("WriteBatch = %d, %v", m, err)
	}
	for range own {
		ptRecv(t, fd, ptIsTest) // they went out
	}
	// The marker from the peer comes after our frames; none of ours may be
	// read before it.
	ptSend(t, fd, ptFrame(t, ptMACB, ptMACA, 64, 999))
	got := ptReadFrames(t, p, 2048, 1, func(f []byte) bool {
		if ptIsTest(f) && bytes.Equal(f[6:12], ptMACA) {
			t.Errorf("read back own frame seq %d", ptSeq(f))
		}
		return ptIsTest(f) && ptSeq(f) == 999
	})
	if len(got) != 1 {
		t.Fatal("marker not read")
	}
}

func TestSystemVLANTagKept(t *testing.T) {
	local, peer, ns := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{})
	fd := ptPacketSocket(t, ns, peer)
	tagged := ptSerialize(t,
		&layers.Ethernet{SrcMAC: ptMACB, DstMAC: ptMACA, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{Priority: 5, VLANIdentifier: 7, Type: ptEtherType},
		gopacket.Payload(bytes.Repeat([]byte{0xab}, 100)))
	prio0 := ptSerialize(t, // priority tag: VLAN 0, PCP 0; the kernel still strips it
		&layers.Ethernet{SrcMAC: ptMACB, DstMAC: ptMACA, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 0, Type: ptEtherType},
		gopacket.Payload(bytes.Repeat([]byte{0xcd}, 100)))
	qinq := ptSerialize(t,
		&layers.Ethernet{SrcMAC: ptMACB, DstMAC: ptMACA, EthernetType: layers.EthernetTypeQinQ},
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 7, Type: ptEtherType},
		gopacket.Payload(bytes.Repeat([]byte{0xef}, 100)))
	ptSend(t, fd, tagged, prio0, qinq)
	isOurs := func(f []byte) bool { return bytes.Equal(f[6:12], ptMACB) }
	got := ptReadFrames(t, p, 2048, 3, isOurs)
	for i, want := range [][]byte{tagged, prio0, qinq} {
		if !bytes.Equal(got[i], want) {
			t.Errorf("frame %d:\n got % x\nwant % x", i, got[i][:20], want[:20])
		}
	}
}

func TestSystemCloseUnblocksRead(t *testing.T) {
	local, _, _ := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{})
	done := make(chan error, 1)
	go func() {
		bufs, sizes := ptBufs(p.BatchSize(), 2048)
		for {
			if _, err := p.ReadBatch(bufs, sizes, ptOff); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond) // let it block; the test holds either way
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadBatch after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still blocked after Close")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.WriteBatch([][]byte{ptFrame(t, ptMACA, ptMACB, 64, 0)}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch after Close: %v, want net.ErrClosed", err)
	}
}

// TestSystemGone deletes the interface under a blocked ReadBatch: while up,
// and after it was set down first (the kernel then sends no wake-up on
// deletion). It also checks that down and up again is not "gone".
func TestSystemGone(t *testing.T) {
	for _, tc := range []struct {
		name      string
		downFirst bool
	}{{"up", false}, {"down-then-deleted", true}} {
		t.Run(tc.name, func(t *testing.T) {
			local, peer, ns := ptVeth(t, 1500)
			p := ptOpenSystem(t, local, SystemOptions{})
			fd := ptPacketSocket(t, ns, peer)
			frames := make(chan uint32, 16)
			done := make(chan error, 1)
			go func() {
				bufs, sizes := ptBufs(p.BatchSize(), 2048)
				for {
					n, err := p.ReadBatch(bufs, sizes, ptOff)
					if err != nil {
						done <- err
						return
					}
					for i := range n {
						if f := bufs[i][ptOff : ptOff+sizes[i]]; ptIsTest(f) {
							frames <- ptSeq(f)
						}
					}
				}
			}()
			if tc.downFirst {
				testutil.Run(t, "ip", "link", "set", local, "down")
				time.Sleep(3 * downPoll) // a few polls: down is not gone
				select {
				case err := <-done:
					t.Fatalf("ReadBatch returned %v while the link was only down", err)
				default:
				}
				testutil.Run(t, "ip", "link", "set", local, "up")
				// Back up: frames flow again on the same port.
				deadline := time.After(5 * time.Second)
			again:
				for {
					ptSend(t, fd, ptFrame(t, ptMACB, ptMACA, 64, 7))
					select {
					case <-frames:
						break again
					case <-time.After(50 * time.Millisecond):
					case <-deadline:
						t.Fatal("no frames after the link came back up")
					}
				}
				testutil.Run(t, "ip", "link", "set", local, "down")
			}
			start := time.Now()
			testutil.Run(t, "ip", "link", "del", local)
			select {
			case err := <-done:
				if !errors.Is(err, ErrPortGone) {
					t.Fatalf("ReadBatch after delete: %v, want ErrPortGone", err)
				}
				t.Logf("ErrPortGone %v after delete", time.Since(start))
			case <-time.After(5 * time.Second):
				t.Fatal("ReadBatch still blocked 5s after the interface was deleted")
			}
			if _, err := p.WriteBatch([][]byte{ptFrame(t, ptMACA, ptMACB, 64, 0)}); !errors.Is(err, ErrPortGone) {
				t.Fatalf("WriteBatch after delete: %v, want ErrPortGone", err)
			}
		})
	}
}

func TestSystemNoSuchInterface(t *testing.T) {
	testutil.RequireRoot(t)
	name := ptName(t, "none")
	_, err := OpenSystem(name, SystemOptions{})
	if err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("OpenSystem(%q) = %v, want an error naming it", name, err)
	}
}

// TestSystemAllocs holds the promise of no allocation per batch in steady
// state, with frames ready to read.
func TestSystemAllocs(t *testing.T) {
	local, peer, ns := ptVeth(t, 1500)
	p := ptOpenSystem(t, local, SystemOptions{})
	fd := ptPacketSocket(t, ns, peer)
	const n = 64
	frames := make([][]byte, n)
	gen := mmsg.NewBatch(n, mmsg.Options{})
	for i := range frames {
		frames[i] = ptFrame(t, ptMACB, ptMACA, 64, uint32(i))
		gen.SetBuf(i, frames[i])
	}
	bufs, sizes := ptBufs(n, 2048)
	// Warm up: the first read parks in the poller, which may allocate once.
	ptSend(t, fd, frames[0])
	if _, err := p.ReadBatch(bufs, sizes, ptOff); err != nil {
		t.Fatal(err)
	}
	read := testing.AllocsPerRun(100, func() {
		if m, err := gen.Send(fd, 0, n, 0); m != n || err != nil {
			t.Fatalf("send: %d, %v", m, err)
		}
		if _, err := p.ReadBatch(bufs, sizes, ptOff); err != nil {
			t.Fatal(err)
		}
	})
	write := testing.AllocsPerRun(100, func() {
		if m, err := p.WriteBatch(frames); m != n || err != nil {
			t.Fatalf("WriteBatch: %d, %v", m, err)
		}
	})
	if read != 0 || write != 0 {
		t.Fatalf("allocations per batch: ReadBatch %v, WriteBatch %v; want 0", read, write)
	}
}

// TestSystemOnForeignTAP attaches to a multi-queue TAP that another
// process holds open, as QEMU does (-netdev tap,ifname=...,script=no).
func TestSystemOnForeignTAP(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NetNS(t, ptName(t, "n"))
	tap := ptName(t, "t")
	testutil.Run(t, "ip", "-n", ns, "tuntap", "add", "mode", "tap", "dev", tap, "multi_queue")
	var tapfd int
	var err error
	ptInNS(t, ns, func() { tapfd, err = testutil.OpenTAPQueue(tap, 0) })
	if err != nil {
		t.Fatalf("open TAP queue: %v", err)
	}
	t.Cleanup(func() { unix.Close(tapfd) })
	testutil.Run(t, "ip", "-n", ns, "link", "set", tap, "up")
	var port Port
	ptInNS(t, ns, func() { port, err = OpenSystem(tap, SystemOptions{}) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { port.Close() })
	p := port.(*afpacketPort)
	// Guest -> switch: the "VM" writes into its TAP fd.
	in := ptFrame(t, ptMACB, ptMACA, 200, 1)
	ptSend(t, tapfd, in)
	if got := ptReadFrames(t, p, 2048, 1, ptIsTest); !bytes.Equal(got[0], in) {
		t.Fatalf("from the VM: got %d bytes", len(got[0]))
	}
	// Switch -> guest: the VM reads what the port writes.
	out := ptFrame(t, ptMACA, ptMACB, 300, 2)
	if m, err := p.WriteBatch([][]byte{out}); m != 1 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", m, err)
	}
	if got := ptRecv(t, tapfd, ptIsTest); !bytes.Equal(got, out) {
		t.Fatalf("to the VM: got %d bytes", len(got))
	}
}
