package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vxswitch/vxswitch/control"
	"github.com/vxswitch/vxswitch/control/controltest"
	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/fdb"
)

func u16(v uint16) *uint16 { return &v }

func newFake() *controltest.Fake {
	tag := uint16(7)
	return &controltest.Fake{
		ShowReply: control.ShowReply{
			Bridge: "blue",
			Ports:  []control.PortInfo{{Name: "c0", Type: "internal", VLANMode: "access", Tag: &tag, MTU: 9000, State: "up", NetNS: "/run/netns/blue-c0"}},
			VXLAN:  &control.VXLANInfo{Local: "172.16.220.2", Port: 4789, VNIMap: []control.VNIPair{{VLAN: 7, VNI: 7}}, Accept: "any"},
			VTEPs:  []control.VTEPInfo{{Address: "172.16.221.2", Port: 4789, Source: "static", VNIs: []uint32{7}}},
		},
		Entries: []control.FDBEntry{
			{Port: "c0", VLAN: 7, MAC: "00:16:3e:2d:4f:16", Age: 1},
			{Port: "vxlan", VLAN: 7, MAC: "3a:98:95:a9:6b:44", Age: 3, Remote: "172.16.221.2"},
			{Port: "sw-vlan7", VLAN: 8, MAC: "02:00:00:00:00:01", Static: true},
		},
		MemberList: []control.MemberInfo{{Name: "green", Address: "172.16.221.2", State: "alive", VNIs: []uint32{7}}},
		StatsReply: control.StatsReply{
			Ports: []control.PortStats{{Name: "c0", PortCounters: dataplane.PortCounters{RxPackets: 1, RxBytes: 60, Drops: map[string]uint64{"too_big": 2}}, FDB: fdb.PortStats{Entries: 1}}},
			FDB:   fdb.Stats{Entries: 3, Capacity: 8192},
		},
		Flushed: 2,
	}
}

func TestAPIEndpoints(t *testing.T) {
	f := newFake()
	c := control.NewClient(controltest.Serve(t, f))
	defer c.Close()
	ctx := context.Background()

	show, err := c.Show(ctx)
	if err != nil || !reflect.DeepEqual(show, f.ShowReply) {
		t.Errorf("Show = %+v, %v; want %+v", show, err, f.ShowReply)
	}
	all, err := c.FDB(ctx, control.FDBQuery{})
	if err != nil || !reflect.DeepEqual(all, f.Entries) {
		t.Errorf("FDB = %+v, %v; want %+v", all, err, f.Entries)
	}
	some, err := c.FDB(ctx, control.FDBQuery{VLAN: u16(7), Port: "vxlan"})
	if err != nil || !reflect.DeepEqual(some, f.Entries[1:2]) {
		t.Errorf("FDB(vlan 7, port vxlan) = %+v, %v; want %+v", some, err, f.Entries[1:2])
	}
	none, err := c.FDB(ctx, control.FDBQuery{VLAN: u16(0)})
	if err != nil || none == nil || len(none) != 0 {
		t.Errorf("FDB(vlan 0) = %#v, %v; want an empty, non-nil list", none, err)
	}
	if err := c.FDBAdd(ctx, control.FDBAddRequest{MAC: "02:00:00:00:00:02", VLAN: 7, Port: "c0"}); err != nil {
		t.Errorf("FDBAdd: %v", err)
	}
	if err := c.FDBDel(ctx, control.FDBDelRequest{MAC: "02:00:00:00:00:02", VLAN: 7}); err != nil {
		t.Errorf("FDBDel: %v", err)
	}
	fl, err := c.FDBFlush(ctx, control.FDBFlushRequest{VLAN: u16(7), Port: "c0"})
	if err != nil || fl.Flushed != 2 {
		t.Errorf("FDBFlush = %+v, %v; want 2 flushed", fl, err)
	}
	padd := control.PortAddRequest{Name: "c1", Type: "internal", Tag: u16(7), NetNS: "blue-c1", Addresses: []string{"192.0.2.9/24"}}
	if err := c.PortAdd(ctx, padd); err != nil {
		t.Errorf("PortAdd: %v", err)
	}
	if err := c.PortDel(ctx, "c1"); err != nil {
		t.Errorf("PortDel: %v", err)
	}
	m, err := c.Members(ctx)
	if err != nil || !reflect.DeepEqual(m, f.MemberList) {
		t.Errorf("Members = %+v, %v; want %+v", m, err, f.MemberList)
	}
	st, err := c.Stats(ctx)
	if err != nil || !reflect.DeepEqual(st, f.StatsReply) {
		t.Errorf("Stats = %+v, %v; want %+v", st, err, f.StatsReply)
	}

	want := []controltest.Call{
		{Method: "Show"},
		{Method: "FDB", Arg: control.FDBQuery{}},
		{Method: "FDB", Arg: control.FDBQuery{VLAN: u16(7), Port: "vxlan"}},
		{Method: "FDB", Arg: control.FDBQuery{VLAN: u16(0)}},
		{Method: "FDBAdd", Arg: control.FDBAddRequest{MAC: "02:00:00:00:00:02", VLAN: 7, Port: "c0"}},
		{Method: "FDBDel", Arg: control.FDBDelRequest{MAC: "02:00:00:00:00:02", VLAN: 7}},
		{Method: "FDBFlush", Arg: control.FDBFlushRequest{VLAN: u16(7), Port: "c0"}},
		{Method: "PortAdd", Arg: padd},
		{Method: "PortDel", Arg: "c1"},
		{Method: "Members"},
		{Method: "Stats"},
	}
	if got := f.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls:\n got  %+v\n want %+v", got, want)
	}
}

func TestAPIErrorCodes(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want *control.APIError
	}{
		{"not found", control.Errorf(control.CodeNotFound, "no such port %q", "x"), &control.APIError{Code: "not_found", Message: `no such port "x"`}},
		{"bad request", control.Errorf(control.CodeBadRequest, "bad"), &control.APIError{Code: "bad_request", Message: "bad"}},
		{"conflict", control.Errorf(control.CodeConflict, "exists"), &control.APIError{Code: "conflict", Message: "exists"}},
		{"unavailable", control.Errorf(control.CodeUnavailable, "gossip is off"), &control.APIError{Code: "unavailable", Message: "gossip is off"}},
		{"wrapped", errWrap{control.Errorf(control.CodeNotFound, "gone")}, &control.APIError{Code: "not_found", Message: "gone"}},
		{"plain error is internal", errors.New("boom"), &control.APIError{Code: "internal", Message: "boom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.Errs = map[string]error{"PortDel": tt.err}
			c := control.NewClient(controltest.Serve(t, f))
			defer c.Close()
			err := c.PortDel(context.Background(), "x")
			var ae *control.APIError
			if !errors.As(err, &ae) || !reflect.DeepEqual(ae, tt.want) {
				t.Errorf("got %#v, want %#v", err, tt.want)
			}
			if control.ErrorCodeOf(err) != tt.want.Code {
				t.Errorf("ErrorCodeOf = %q, want %q", control.ErrorCodeOf(err), tt.want.Code)
			}
		})
	}
}

type errWrap struct{ err error }

func (e errWrap) Error() string { return e.err.Error() }
func (e errWrap) Unwrap() error { return e.err }

// rawDo sends a request over the socket without the Client.
func rawDo(t *testing.T, sock, method, path, body string) (int, map[string]any) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequest(method, "http://x"+path, strings.NewReader(body))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, data, err)
	}
	return resp.StatusCode, m
}

func TestAPIMalformedRequests(t *testing.T) {
	f := newFake()
	sock := controltest.Serve(t, f)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"vlan not a number", "GET", "/v1/fdb?vlan=x", "", 400, "bad_request"},
		{"vlan out of range", "GET", "/v1/fdb?vlan=4095", "", 400, "bad_request"},
		{"del vlan out of range", "DELETE", "/v1/fdb/5000/02:00:00:00:00:01", "", 400, "bad_request"},
		{"unknown field", "POST", "/v1/fdb", `{"mac":"02:00:00:00:00:01","vlan":7,"port":"c0","x":1}`, 400, "bad_request"},
		{"not JSON", "POST", "/v1/ports", `name=c1`, 400, "bad_request"},
		{"trailing data", "POST", "/v1/fdb/flush", `{} {}`, 400, "bad_request"},
		{"unknown endpoint", "GET", "/v1/bogus", "", 404, "not_found"},
		{"wrong method", "PUT", "/v1/show", "", 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := rawDo(t, sock, tt.method, tt.path, tt.body)
			if status != tt.status || body["code"] != tt.code || body["error"] == "" {
				t.Errorf("got %d %v, want %d with code %q and a message", status, body, tt.status, tt.code)
			}
		})
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("malformed requests reached the backend: %+v", calls)
	}
}

func TestSocketMode(t *testing.T) {
	sock := controltest.Serve(t, newFake())
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want a socket with mode 0660", fi.Mode())
	}
	// Nothing but the socket is left in its directory (no temporary name).
	ents, _ := os.ReadDir(filepath.Dir(sock))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the socket", len(ents))
	}
}

func TestSocketGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another group needs root")
	}
	path := filepath.Join(t.TempDir(), "g.sock")
	ln, err := control.ListenSocket(path, 4242)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if gid := fi.Sys().(*syscall.Stat_t).Gid; gid != 4242 {
		t.Errorf("socket group %d, want 4242", gid)
	}
}

func TestClientAgentNotRunning(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody listens: ECONNREFUSED
	for _, tt := range []struct{ path, says string }{
		{missing, "no socket at " + missing},
		{stale, "nothing listens on " + stale},
	} {
		_, err := control.NewClient(tt.path).Show(context.Background())
		var se *control.SocketError
		if !errors.As(err, &se) || se.Path != tt.path {
			t.Fatalf("Show on %s: %v, want a *SocketError", tt.path, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.says) || !strings.Contains(msg, "vxswitch agent --config FILE") {
			t.Errorf("message %q should say %q and suggest `vxswitch agent --config FILE`", msg, tt.says)
		}
	}
}

func TestSocketErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{syscall.EACCES, "permission denied connecting to the agent at /run/x.sock: run as root or as a member of the socket's group (control.group)"},
		{syscall.ENOENT, "the vxswitch agent is not running (no socket at /run/x.sock); start it with `vxswitch agent --config FILE`, or point --socket or VXSWITCH_SOCKET at its socket"},
		{syscall.ECONNREFUSED, "the vxswitch agent is not running (nothing listens on /run/x.sock); start it with `vxswitch agent --config FILE`"},
		{syscall.ENOTSOCK, "cannot reach the vxswitch agent at /run/x.sock: socket operation on non-socket; is it running? start it with `vxswitch agent --config FILE`"},
	}
	for _, tt := range tests {
		if got := (&control.SocketError{Path: "/run/x.sock", Err: tt.err}).Error(); got != tt.want {
			t.Errorf("%v:\n got  %s\n want %s", tt.err, got, tt.want)
		}
	}
}

// The JSON keys are the contract of DESIGN.md and of scripts.
func TestJSONKeys(t *testing.T) {
	keys := func(v any) []string {
		b, _ := json.Marshal(v)
		var m map[string]any
		json.Unmarshal(b, &m)
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		v    any
		want []string
	}{
		{control.FDBEntry{}, []string{"age", "mac", "port", "remote", "static", "vlan"}},
		{control.MemberInfo{}, []string{"address", "name", "state", "vnis"}},
		{control.APIError{}, []string{"code", "error"}},
		{control.PortStats{}, []string{"drops", "fdb", "name", "rx_bytes", "rx_packets", "tx_bytes", "tx_packets"}},
		{control.ShowReply{}, []string{"bridge", "ports", "vteps", "workers"}},
	}
	for _, tt := range tests {
		if got := keys(tt.v); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%T keys %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestPortAddRequestChecks(t *testing.T) {
	tests := []struct {
		name string
		req  control.PortAddRequest
		want string // "" = valid
	}{
		{"access", control.PortAddRequest{Name: "c1", Type: "internal", Tag: u16(7)}, ""},
		{"trunk", control.PortAddRequest{Name: "t1", Type: "system", Trunks: "7,220-221"}, ""},
		{"no type", control.PortAddRequest{Name: "c1"}, `port type "": want internal or system`},
		{"long name", control.PortAddRequest{Name: "abcdefghijklmnop", Type: "internal"}, `port name "abcdefghijklmnop" is 16 bytes; an interface name has at most 15`},
		{"tag range", control.PortAddRequest{Name: "c1", Type: "internal", Tag: u16(4095)}, "tag: VLAN 4095 out of range 0-4094"},
		{"trunks", control.PortAddRequest{Name: "c1", Type: "internal", Trunks: "7,5000"}, "trunks: VLAN 5000 out of range 0-4094"},
		{"mode", control.PortAddRequest{Name: "c1", Type: "internal", VLANMode: "access"}, `port "c1": vlan-mode access needs a tag`},
		{"netns on system", control.PortAddRequest{Name: "e1", Type: "system", NetNS: "x"}, `port "e1": netns, addresses and mac apply to internal ports only`},
		{"mac", control.PortAddRequest{Name: "c1", Type: "internal", MAC: "02:00:5e:10:00:01"}, ""},
		{"mac on system", control.PortAddRequest{Name: "e1", Type: "system", MAC: "02:00:5e:10:00:01"}, `port "e1": netns, addresses and mac apply to internal ports only`},
		{"mac word", control.PortAddRequest{Name: "c1", Type: "internal", MAC: "random"}, `mac "random": want an Ethernet address such as 02:00:5e:10:00:01`},
		{"mac multicast", control.PortAddRequest{Name: "c1", Type: "internal", MAC: "01:00:5e:00:00:01"}, "mac 01:00:5e:00:00:01: a multicast address cannot be an interface's"},
		{"mac zero", control.PortAddRequest{Name: "c1", Type: "internal", MAC: "00:00:00:00:00:00"}, "mac 00:00:00:00:00:00: all zeros cannot be an interface's"},
		{"mac 64 bits", control.PortAddRequest{Name: "c1", Type: "internal", MAC: "02:00:5e:10:00:01:02:03"}, "mac 02:00:5e:10:00:01:02:03: want a 48-bit Ethernet address"},
		{"address", control.PortAddRequest{Name: "c1", Type: "internal", Addresses: []string{"1.2.3.4"}}, `bad address "1.2.3.4": want an address with a prefix length, such as 192.0.2.1/24`},
		{"mtu", control.PortAddRequest{Name: "c1", Type: "internal", MTU: 10}, "MTU 10 out of range 68-65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.req.PortConfig()
			got := ""
			if err != nil {
				got = err.Error()
				if control.ErrorCodeOf(err) != control.CodeBadRequest {
					t.Errorf("code %q, want bad_request", control.ErrorCodeOf(err))
				}
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
