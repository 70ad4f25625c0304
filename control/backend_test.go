package control

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/dataplane/porttest"
	"github.com/vxswitch/vxswitch/fdb"
)

func mustMAC(s string) fdb.MAC {
	m, err := fdb.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// frame is a minimal untagged broadcast Ethernet frame from src.
func frame(src fdb.MAC) []byte {
	f := make([]byte, 60)
	copy(f, fdb.Broadcast[:])
	copy(f[6:], src[:])
	f[12], f[13] = 0x08, 0x00
	return f
}

func TestAgentBackend(t *testing.T) {
	dev := &fakeDevices{}
	cfg := testConfig(t, "c0", "tap220")
	a := startTest(t, cfg, dev)
	ctx := context.Background()
	tun := porttest.NewTunnel()
	if err := a.sw.SetTunnel(tun, dataplane.TunnelConfig{}); err != nil {
		t.Fatal(err)
	}
	c0, _ := a.sw.PortByName("c0")
	tap, _ := a.sw.PortByName("tap220")
	vx, _ := a.sw.PortByName("vxlan")
	vtep := netip.MustParseAddr("172.16.221.2")
	now := fdb.Now()
	a.fdb.Learn(fdb.Key{VLAN: 7, MAC: mustMAC("00:16:3e:2d:4f:16")}, fdb.Dest{Port: c0}, now-1e9)
	a.fdb.Learn(fdb.Key{VLAN: 7, MAC: mustMAC("3a:98:95:a9:6b:44")}, fdb.Dest{Port: vx, VTEP: vtep}, now-3e9)
	a.fdb.Learn(fdb.Key{VLAN: 220, MAC: mustMAC("02:00:00:00:00:02")}, fdb.Dest{Port: tap}, now)
	a.fdb.Learn(fdb.Key{VLAN: 7, MAC: mustMAC("02:00:00:00:00:01")}, fdb.Dest{Port: tap}, now)

	// Through the API, as the CLI does: add a static entry, then list.
	if err := a.FDBAdd(ctx, FDBAddRequest{MAC: "02:aa:00:00:00:01", VLAN: 7, Port: "c0"}); err != nil {
		t.Fatal(err)
	}
	got, err := a.FDB(ctx, FDBQuery{})
	if err != nil {
		t.Fatal(err)
	}
	want := []FDBEntry{
		{Port: "c0", VLAN: 7, MAC: "00:16:3e:2d:4f:16", Age: 1},
		{Port: "c0", VLAN: 7, MAC: "02:aa:00:00:00:01", Static: true},
		{Port: "tap220", VLAN: 7, MAC: "02:00:00:00:00:01"},
		{Port: "tap220", VLAN: 220, MAC: "02:00:00:00:00:02"},
		{Port: "vxlan", VLAN: 7, MAC: "3a:98:95:a9:6b:44", Age: 3, Remote: "172.16.221.2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fdb show:\n got  %+v\n want %+v", got, want)
	}

	vlan7 := uint16(7)
	for _, tt := range []struct {
		q    FDBQuery
		want []FDBEntry
	}{
		{FDBQuery{Port: "vxlan"}, want[4:]},
		{FDBQuery{Port: "tap220", VLAN: &vlan7}, want[2:3]},
	} {
		got, err := a.FDB(ctx, tt.q)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("fdb show %+v: %+v, %v; want %+v", tt.q, got, err, tt.want)
		}
	}

	errTests := []struct {
		name string
		err  error
		code ErrorCode
	}{
		{"show unknown port", func() error { _, err := a.FDB(ctx, FDBQuery{Port: "nope"}); return err }(), CodeNotFound},
		{"add bad MAC", a.FDBAdd(ctx, FDBAddRequest{MAC: "zz", VLAN: 7, Port: "c0"}), CodeBadRequest},
		{"add multicast", a.FDBAdd(ctx, FDBAddRequest{MAC: "01:00:5e:00:00:01", VLAN: 7, Port: "c0"}), CodeBadRequest},
		{"add unknown port", a.FDBAdd(ctx, FDBAddRequest{MAC: "02:00:00:00:00:09", VLAN: 7, Port: "nope"}), CodeNotFound},
		{"add VLAN not carried", a.FDBAdd(ctx, FDBAddRequest{MAC: "02:00:00:00:00:09", VLAN: 8, Port: "c0"}), CodeBadRequest},
		{"add on the tunnel", a.FDBAdd(ctx, FDBAddRequest{MAC: "02:00:00:00:00:09", VLAN: 7, Port: "vxlan"}), CodeBadRequest},
		{"del missing", a.FDBDel(ctx, FDBDelRequest{MAC: "02:00:00:00:00:09", VLAN: 7}), CodeNotFound},
		{"flush unknown port", func() error { _, err := a.FDBFlush(ctx, FDBFlushRequest{Port: "nope"}); return err }(), CodeNotFound},
		{"port del unknown", a.PortDel(ctx, "nope"), CodeNotFound},
		{"port del tunnel", a.PortDel(ctx, "vxlan"), CodeBadRequest},
		{"port add exists", a.PortAdd(ctx, PortAddRequest{Name: "c0", Type: "internal"}), CodeConflict},
		{"port add bad", a.PortAdd(ctx, PortAddRequest{Name: "c9", Type: "bogus"}), CodeBadRequest},
		{"members without gossip", func() error { _, err := a.Members(ctx); return err }(), CodeUnavailable},
	}
	for _, tt := range errTests {
		if tt.err == nil || ErrorCodeOf(tt.err) != tt.code {
			t.Errorf("%s: %v, want code %s", tt.name, tt.err, tt.code)
		}
	}

	if err := a.FDBDel(ctx, FDBDelRequest{MAC: "02:00:00:00:00:01", VLAN: 7}); err != nil {
		t.Errorf("fdb del: %v", err)
	}
	if r, err := a.FDBFlush(ctx, FDBFlushRequest{Port: "tap220"}); err != nil || r.Flushed != 1 {
		t.Errorf("flush tap220: %+v, %v; want 1", r, err)
	}
	if r, err := a.FDBFlush(ctx, FDBFlushRequest{VLAN: &vlan7}); err != nil || r.Flushed != 2 {
		t.Errorf("flush VLAN 7: %+v, %v; want 2 (learned only)", r, err)
	}
	if got, _ := a.FDB(ctx, FDBQuery{}); len(got) != 1 || !got[0].Static {
		t.Errorf("after flushes: %+v, want only the static entry", got)
	}

	// Run-time ports: add takes the bridge MTU, del removes the device.
	if err := a.PortAdd(ctx, PortAddRequest{Name: "c1", Type: "internal", Tag: &vlan7, MACLimit: 5}); err != nil {
		t.Fatal(err)
	}
	show, _ := a.Show(ctx)
	if n := len(show.Ports); n != 3 || show.Ports[2].Name != "c1" || show.Ports[2].MTU != 9000 {
		t.Errorf("after port add: %+v", show.Ports)
	}
	if err := a.PortDel(ctx, "c1"); err != nil || !dev.closed("c1") {
		t.Errorf("port del: %v, closed %v", err, dev.closed("c1"))
	}

	st, _ := a.Stats(ctx)
	if len(st.Ports) != 2 || st.Tunnel == nil || st.FDB.Static != 1 || st.Ports[0].FDB.Entries != 1 {
		t.Errorf("stats: %+v", st)
	}
}

// A frame that enters a port is learned and shows in fdb show.
func TestAgentLearnsFromTraffic(t *testing.T) {
	dev := &fakeDevices{}
	a := startTest(t, testConfig(t, "c0", "tap220"), dev)
	dev.mu.Lock()
	p := dev.opened["c0"]
	dev.mu.Unlock()
	p.Inject(frame(mustMAC("00:16:3e:00:00:07")))
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := a.FDB(context.Background(), FDBQuery{})
		if len(got) == 1 && got[0].Port == "c0" && got[0].VLAN == 7 && got[0].MAC == "00:16:3e:00:00:07" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not learned: %+v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, _ := a.Stats(context.Background())
	if st.Ports[0].RxPackets != 1 {
		t.Errorf("c0 rx_packets = %d, want 1", st.Ports[0].RxPackets)
	}
}
