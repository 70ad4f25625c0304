package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

// vxlanCapture counts, by VNI, the VXLAN packets (UDP to port 4789) that
// arrive on one interface of a namespace, from an AF_PACKET socket.
// Packets the namespace sends are not counted: capture on both ends of a
// link to see both directions.
type vxlanCapture struct {
	mu      sync.Mutex
	vnis    map[uint32]int // guarded by mu
	noIFlag int            // guarded by mu

	stop chan struct{}
	done chan error
}

// captureVXLAN starts a capture on ifname in ns; it returns once the
// socket is bound, so nothing that arrives later is missed.
func captureVXLAN(ns, ifname string) (*vxlanCapture, error) {
	c := &vxlanCapture{vnis: map[uint32]int{}, stop: make(chan struct{}), done: make(chan error, 1)}
	ready := make(chan error, 1)
	go func() {
		c.done <- inNS(ns, func() error {
			r, err := openRaw(ifname)
			ready <- err
			if err != nil {
				return err
			}
			defer r.Close()
			return c.loop(r)
		})
	}()
	if err := <-ready; err != nil {
		return nil, fmt.Errorf("capture on %s in %s: %w", ifname, ns, err)
	}
	return c, nil
}

func (c *vxlanCapture) loop(r *rawSock) error {
	buf := make([]byte, 65536)
	for {
		select {
		case <-c.stop:
			return nil
		default:
		}
		n, from, err := unix.Recvfrom(r.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue // SO_RCVTIMEO: look at stop again
			}
			return err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		c.count(buf[:n])
	}
}

func (c *vxlanCapture) count(frame []byte) {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if udp == nil || udp.DstPort != 4789 || len(udp.Payload) < 8 {
		return
	}
	hdr := udp.Payload
	vni := binary.BigEndian.Uint32(hdr[4:8]) >> 8
	c.mu.Lock()
	defer c.mu.Unlock()
	c.vnis[vni]++
	if hdr[0]&0x08 == 0 {
		c.noIFlag++
	}
}

// Stop ends the capture and returns the packets seen by VNI and how many
// lacked the I flag.
func (c *vxlanCapture) Stop() (map[uint32]int, int, error) {
	close(c.stop)
	err := <-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.vnis, c.noIFlag, err
}

// vniList formats a VNI count map in VNI order.
func vniList(m map[uint32]int) string {
	keys := make([]uint32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf(" VNI %d: %d packets;", k, m[k])
	}
	return s
}
