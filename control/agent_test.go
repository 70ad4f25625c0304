package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/dataplane/porttest"
	"github.com/vxswitch/vxswitch/fdb"
)

// fakeDevices stands in for TAP and AF_PACKET devices.
type fakeDevices struct {
	mu     sync.Mutex
	opened map[string]*porttest.Port
	fail   string // opening this port fails
}

func (d *fakeDevices) open(pc dataplane.PortConfig) (dataplane.Port, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pc.Name == d.fail {
		return nil, errors.New("no such device")
	}
	if d.opened == nil {
		d.opened = map[string]*porttest.Port{}
	}
	p := porttest.New()
	d.opened[pc.Name] = p
	return p, nil
}

// closed reports whether the fake device of port name was closed.
func (d *fakeDevices) closed(name string) bool {
	d.mu.Lock()
	p := d.opened[name]
	d.mu.Unlock()
	bufs, sizes := [][]byte{make([]byte, 64)}, []int{0}
	_, err := p.ReadBatch(bufs, sizes, 0) // returns at once when closed
	return errors.Is(err, net.ErrClosed)
}

func testConfig(t *testing.T, ports ...string) *Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Bridge = "blue"
	cfg.MTU = 9000
	cfg.Control.Socket = filepath.Join(t.TempDir(), "run", "vxswitch.sock") // run/ is created by Start
	for i, name := range ports {
		pc := dataplane.PortConfig{Name: name, Type: dataplane.PortInternal, HasTag: true, Tag: 7}
		if i == 1 {
			pc = dataplane.PortConfig{Name: name, Type: dataplane.PortSystem, Trunks: vlanSet(7, 220, 221), MTU: 1500}
		}
		if err := pc.Normalize(); err != nil {
			t.Fatal(err)
		}
		cfg.Ports = append(cfg.Ports, pc)
	}
	return cfg
}

func startTest(t *testing.T, cfg *Config, dev *fakeDevices) *Agent {
	t.Helper()
	a, err := start(cfg, slog.New(slog.DiscardHandler), startOptions{open: dev.open})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// checkGoroutineLeak fails the test if, once it ends, more goroutines run
// than when it began (wireguard-go's goroutineLeakCheck, by count).
func checkGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestAgentLifecycle(t *testing.T) {
	checkGoroutineLeak(t)
	dev := &fakeDevices{}
	cfg := testConfig(t, "c0", "tap220")
	cfg.Metrics.Listen = "127.0.0.1:0"
	a := startTest(t, cfg, dev)

	fi, err := os.Stat(cfg.Control.Socket)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket: %v, %v; want a socket with mode 0660", fi, err)
	}
	c := NewClient(cfg.Control.Socket)
	defer c.Close()
	show, err := c.Show(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tag := uint16(7)
	want := ShowReply{Bridge: "blue", Ports: []PortInfo{
		{Name: "c0", Type: "internal", VLANMode: "access", Tag: &tag, MTU: 9000, State: "up"},
		{Name: "tap220", Type: "system", VLANMode: "trunk", Trunks: "7,220-221", MTU: 1500, State: "up"},
	}, VTEPs: []VTEPInfo{}}
	if !reflect.DeepEqual(show, want) {
		t.Errorf("show:\n got  %+v\n want %+v", show, want)
	}

	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Stat(cfg.Control.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
	for _, name := range []string{"c0", "tap220"} {
		if !dev.closed(name) {
			t.Errorf("port %s not closed", name)
		}
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Show(context.Background()); err == nil {
		t.Error("API still answers after Close")
	}
}

func TestAgentSecondRefuses(t *testing.T) {
	cfg := testConfig(t)
	startTest(t, cfg, &fakeDevices{})
	_, err := start(cfg, nil, startOptions{open: (&fakeDevices{}).open})
	want := "another vxswitch agent is already running on " + cfg.Control.Socket
	if !errors.Is(err, ErrAlreadyRunning) || err.Error() != want {
		t.Fatalf("second start: %v, want %q", err, want)
	}
	// The first agent is unharmed.
	if _, err := NewClient(cfg.Control.Socket).Show(context.Background()); err != nil {
		t.Errorf("first agent: %v", err)
	}
}

func TestAgentRefusesLiveForeignSocket(t *testing.T) {
	cfg := testConfig(t)
	os.MkdirAll(filepath.Dir(cfg.Control.Socket), 0o755)
	ln, err := net.Listen("unix", cfg.Control.Socket) // someone without our lock answers
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := start(cfg, nil, startOptions{}); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("start: %v, want ErrAlreadyRunning", err)
	}
	if _, err := os.Stat(cfg.Control.Socket); err != nil {
		t.Errorf("live socket was removed: %v", err)
	}
}

func TestAgentReplacesStaleSocket(t *testing.T) {
	cfg := testConfig(t)
	os.MkdirAll(filepath.Dir(cfg.Control.Socket), 0o755)
	ln, err := net.Listen("unix", cfg.Control.Socket)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // a crashed agent's socket: the file stays, nobody listens
	startTest(t, cfg, &fakeDevices{})
	if _, err := NewClient(cfg.Control.Socket).Show(context.Background()); err != nil {
		t.Errorf("agent on a replaced stale socket: %v", err)
	}
}

func TestAgentRefusesNonSocket(t *testing.T) {
	cfg := testConfig(t)
	os.MkdirAll(filepath.Dir(cfg.Control.Socket), 0o755)
	os.WriteFile(cfg.Control.Socket, []byte("precious"), 0o644)
	_, err := start(cfg, nil, startOptions{})
	if err == nil || !strings.Contains(err.Error(), "exists and is not a socket") {
		t.Fatalf("start: %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(cfg.Control.Socket); string(b) != "precious" {
		t.Error("a regular file at the socket path was touched")
	}
}

func TestAgentUndoesFailedStart(t *testing.T) {
	dev := &fakeDevices{fail: "tap220"}
	cfg := testConfig(t, "c0", "tap220")
	_, err := start(cfg, nil, startOptions{open: dev.open})
	if err == nil || !strings.Contains(err.Error(), `port "tap220"`) {
		t.Fatalf("start: %v, want an error naming port tap220", err)
	}
	if !dev.closed("c0") {
		t.Error("port c0, added before the failure, was not closed")
	}
	if _, err := os.Stat(cfg.Control.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	// Nothing is held: the same config starts once the device exists.
	dev.fail = ""
	startTest(t, cfg, dev)
}

func TestAgentMetricsListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t, "c0")
	cfg.Metrics.Listen = ln.Addr().String() // taken
	dev := &fakeDevices{}
	if _, err := start(cfg, nil, startOptions{open: dev.open}); err == nil || !strings.Contains(err.Error(), "metrics.listen") {
		t.Fatalf("start: %v, want a metrics.listen error", err)
	}
	if !dev.closed("c0") {
		t.Error("port c0 not closed after the failed start")
	}
	if _, err := os.Stat(cfg.Control.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

func TestAgeInterval(t *testing.T) {
	for _, tt := range []struct{ aging, want time.Duration }{
		{300 * time.Second, time.Second},
		{5 * time.Second, 500 * time.Millisecond},
		{time.Second, 100 * time.Millisecond},
		{10 * time.Millisecond, 100 * time.Millisecond},
	} {
		if got := ageInterval(tt.aging); got != tt.want {
			t.Errorf("ageInterval(%v) = %v, want %v", tt.aging, got, tt.want)
		}
	}
}

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

func TestLookupGroup(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		ok   bool
	}{{"", -1, true}, {"0", 0, true}, {"root", 0, true}, {"no-such-group-vx", -1, false}} {
		got, err := lookupGroup(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("lookupGroup(%q) = %d, %v", tt.in, got, err)
		}
	}
	_ = fmt.Sprint()
}
