package control

import (
	"context"
	"errors"
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
)

// fakeDevices stands in for TAP and AF_PACKET devices.
type fakeDevices struct {
	mu     sync.Mutex
	opened map[string]*porttest.Port
	queues map[string]int // PortConfig.Queues each port was opened with
	fail   string         // opening this port fails
}

func (d *fakeDevices) open(pc dataplane.PortConfig) (dataplane.Port, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pc.Name == d.fail {
		return nil, errors.New("no such device")
	}
	if d.opened == nil {
		d.opened = map[string]*porttest.Port{}
		d.queues = map[string]int{}
	}
	p := porttest.New()
	d.opened[pc.Name] = p
	d.queues[pc.Name] = pc.Queues
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
	want := ShowReply{Bridge: "blue", Workers: 1, Ports: []PortInfo{
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

// TestAgentWorkers: workers: 2 opens every port (from the config and
// from port add) and the tunnel with two queues, and show says so.
func TestAgentWorkers(t *testing.T) {
	checkGoroutineLeak(t)
	dev := &fakeDevices{}
	cfg := testConfig(t, "c0", "tap220")
	cfg.Workers = 2
	cfg.VXLAN.Enabled = true
	cfg.VXLAN.Local = netip.MustParseAddr("127.0.0.1")
	free, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cfg.VXLAN.Port = free.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	free.Close()
	a := startTest(t, cfg, dev)
	c := NewClient(cfg.Control.Socket)
	defer c.Close()
	if err := c.PortAdd(context.Background(), PortAddRequest{Name: "c9", Type: "internal"}); err != nil {
		t.Fatal(err)
	}
	dev.mu.Lock()
	for _, name := range []string{"c0", "tap220", "c9"} {
		if q := dev.queues[name]; q != 2 {
			t.Errorf("port %s opened with %d queues, want 2", name, q)
		}
	}
	dev.mu.Unlock()
	if n := len(a.tunnel.Queues()); n != 2 {
		t.Errorf("tunnel has %d queues, want 2", n)
	}
	show, err := c.Show(context.Background())
	if err != nil || show.Workers != 2 {
		t.Errorf("show: workers %d, %v; want 2", show.Workers, err)
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
}
