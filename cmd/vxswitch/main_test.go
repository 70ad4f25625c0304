package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vxswitch/vxswitch/control"
	"github.com/vxswitch/vxswitch/control/controltest"
	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/fdb"
)

// cli runs one command line in-process, as the binary would.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func u16(v uint16) *uint16 { return &v }

func newFake() *controltest.Fake {
	return &controltest.Fake{
		ShowReply: control.ShowReply{
			Bridge: "blue",
			Ports: []control.PortInfo{
				{Name: "sw-vlan7", Type: "internal", VLANMode: "access", Tag: u16(7), MTU: 9000, State: "up", Addresses: []string{"192.0.2.220/24"}},
				{Name: "c0", Type: "internal", VLANMode: "access", Tag: u16(7), MTU: 9000, State: "up", NetNS: "/run/netns/blue-c0"},
				{Name: "tap220", Type: "system", VLANMode: "trunk", Trunks: "7,220-221", MTU: 1500, State: "down"},
			},
			VXLAN: &control.VXLANInfo{Local: "172.16.220.2", Port: 4789, VNIMap: []control.VNIPair{{VLAN: 7, VNI: 7}}, Accept: "any"},
			VTEPs: []control.VTEPInfo{{Address: "172.16.221.2", Port: 4789, Source: "static", VNIs: []uint32{7}}},
		},
		Entries: []control.FDBEntry{
			{Port: "c0", VLAN: 7, MAC: "00:16:3e:2d:4f:16", Age: 1},
			{Port: "vxlan", VLAN: 7, MAC: "3a:98:95:a9:6b:44", Age: 3, Remote: "172.16.221.2"},
		},
		MemberList: []control.MemberInfo{
			{Name: "blue", Address: "172.16.220.2", State: "alive", VNIs: []uint32{7}},
			{Name: "green-long-name", Address: "172.16.221.2", State: "suspect", VNIs: []uint32{7, 220}},
		},
		StatsReply: control.StatsReply{
			Ports: []control.PortStats{{Name: "c0", PortCounters: dataplane.PortCounters{
				RxPackets: 10, RxBytes: 1000, TxPackets: 20, TxBytes: 2000, Drops: map[string]uint64{"too_big": 2, "short": 0, "vlan_not_allowed": 1},
			}, FDB: fdb.PortStats{Entries: 1}}},
			Tunnel: &dataplane.PortCounters{RxPackets: 5, Drops: map[string]uint64{}},
			FDB:    fdb.Stats{Entries: 2, Capacity: 8192, Learned: 2},
		},
		Flushed: 2,
	}
}

// serveFake serves f and points VXSWITCH_SOCKET at it.
func serveFake(t *testing.T, f *controltest.Fake) string {
	sock := controltest.Serve(t, f)
	t.Setenv(socketEnv, sock)
	return sock
}

func TestFDBShowTable(t *testing.T) {
	serveFake(t, newFake())
	out, errOut, code := cli(t, "fdb", "show")
	// DESIGN.md, character for character.
	want := " port      VLAN  MAC                Age\n" +
		" c0           7  00:16:3e:2d:4f:16    1\n" +
		" vxlan        7  3a:98:95:a9:6b:44    3  172.16.221.2\n"
	if code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, errOut, out, want)
	}
}

func TestFDBTableWideAndStatic(t *testing.T) {
	var b bytes.Buffer
	printFDB(&b, []control.FDBEntry{
		{Port: "sw-vlan7-uplink", VLAN: 4094, MAC: "02:00:00:00:00:01", Static: true},
		{Port: "c0", VLAN: 0, MAC: "02:00:00:00:00:02", Age: 299},
	})
	want := " port             VLAN  MAC                Age\n" +
		" sw-vlan7-uplink  4094  02:00:00:00:00:01  static\n" +
		" c0                  0  02:00:00:00:00:02  299\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestFDBShowJSON(t *testing.T) {
	serveFake(t, newFake())
	out, _, code := cli(t, "fdb", "show", "--json")
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	want := []map[string]any{
		{"port": "c0", "vlan": 7.0, "mac": "00:16:3e:2d:4f:16", "age": 1.0, "static": false, "remote": ""},
		{"port": "vxlan", "vlan": 7.0, "mac": "3a:98:95:a9:6b:44", "age": 3.0, "static": false, "remote": "172.16.221.2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	// No match is an empty list, not null.
	out, _, _ = cli(t, "fdb", "show", "--json", "--vlan", "9")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("empty result printed %q, want []", out)
	}
}

func TestFDBCommandsReachBackend(t *testing.T) {
	f := newFake()
	serveFake(t, f)
	for _, args := range [][]string{
		{"fdb", "show", "--vlan", "7", "--port", "vxlan"},
		{"fdb", "add", "00:16:3E:2D:4F:17", "--vlan", "7", "--port", "c0"},
		{"fdb", "add", "--vlan=7", "--port=c0", "0016.3e2d.4f18"},
		{"fdb", "del", "00:16:3e:2d:4f:17", "--vlan", "7"},
		{"fdb", "flush", "--vlan", "7"},
		{"fdb", "flush", "--port", "c0"},
		{"fdb", "flush"},
	} {
		if _, errOut, code := cli(t, args...); code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
		}
	}
	want := []controltest.Call{
		{Method: "FDB", Arg: control.FDBQuery{VLAN: u16(7), Port: "vxlan"}},
		{Method: "FDBAdd", Arg: control.FDBAddRequest{MAC: "00:16:3e:2d:4f:17", VLAN: 7, Port: "c0"}},
		{Method: "FDBAdd", Arg: control.FDBAddRequest{MAC: "00:16:3e:2d:4f:18", VLAN: 7, Port: "c0"}},
		{Method: "FDBDel", Arg: control.FDBDelRequest{MAC: "00:16:3e:2d:4f:17", VLAN: 7}},
		{Method: "FDBFlush", Arg: control.FDBFlushRequest{VLAN: u16(7)}},
		{Method: "FDBFlush", Arg: control.FDBFlushRequest{Port: "c0"}},
		{Method: "FDBFlush", Arg: control.FDBFlushRequest{}},
	}
	if got := f.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls:\n got  %+v\n want %+v", got, want)
	}
	if out, _, _ := cli(t, "fdb", "flush"); out != "flushed 2 entries\n" {
		t.Errorf("flush printed %q", out)
	}
}

func TestPortCommands(t *testing.T) {
	f := newFake()
	serveFake(t, f)
	args := []string{"port", "add", "c1", "--type", "internal", "--tag", "7", "--netns", "blue-c1",
		"--address", "192.0.2.10/24", "--address", "2001:db8:7::a/64", "--mtu", "1500", "--mac-limit", "64"}
	if _, errOut, code := cli(t, args...); code != 0 {
		t.Fatalf("port add: exit %d: %s", code, errOut)
	}
	if _, errOut, code := cli(t, "port", "add", "tap221", "--type=system", "--trunks", "7,220-221", "--vlan-mode", "trunk"); code != 0 {
		t.Fatalf("port add: exit %d: %s", code, errOut)
	}
	if _, errOut, code := cli(t, "port", "del", "c1"); code != 0 {
		t.Fatalf("port del: exit %d: %s", code, errOut)
	}
	want := []controltest.Call{
		{Method: "PortAdd", Arg: control.PortAddRequest{Name: "c1", Type: "internal", Tag: u16(7), NetNS: "blue-c1",
			Addresses: []string{"192.0.2.10/24", "2001:db8:7::a/64"}, MTU: 1500, MACLimit: 64}},
		{Method: "PortAdd", Arg: control.PortAddRequest{Name: "tap221", Type: "system", Trunks: "7,220-221", VLANMode: "trunk"}},
		{Method: "PortDel", Arg: "c1"},
	}
	if got := f.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls:\n got  %+v\n want %+v", got, want)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	f := newFake()
	serveFake(t, f)
	tests := []struct {
		args []string
		says string
	}{
		{[]string{"fdb", "show", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"--bogus", "show"}, "unknown flag: --bogus"},
		{[]string{"bogus"}, `unknown command "bogus" for "vxswitch"`},
		{[]string{"fdb", "bogus"}, `unknown command "bogus" for "vxswitch fdb"`},
		{[]string{"fdb"}, "missing command"},
		{[]string{}, "missing command"},
		{[]string{"show", "extra"}, `unexpected argument "extra"`},
		{[]string{"fdb", "add", "--vlan", "7", "--port", "c0"}, "missing MAC"},
		{[]string{"fdb", "add", "zz:zz", "--vlan", "7", "--port", "c0"}, `bad MAC "zz:zz"`},
		{[]string{"fdb", "add", "01:00:5e:00:00:01", "--vlan", "7", "--port", "c0"}, "multicast MAC"},
		{[]string{"fdb", "add", "02:00:00:00:00:01", "--port", "c0"}, "--vlan N and --port P are required"},
		{[]string{"fdb", "add", "02:00:00:00:00:01", "--vlan", "5000", "--port", "c0"}, "VLAN 5000 out of range 0-4094"},
		{[]string{"fdb", "show", "--vlan", "x"}, `invalid argument "x" for "--vlan" flag`},
		{[]string{"fdb", "del", "02:00:00:00:00:01"}, "--vlan N is required"},
		{[]string{"fdb", "del", "02:00:00:00:00:01", "02:00:00:00:00:02", "--vlan", "1"}, `unexpected argument "02:00:00:00:00:02"`},
		{[]string{"port", "add", "c1"}, "--type system|internal is required"},
		{[]string{"port", "add", "c1", "--type", "bridge"}, `port type "bridge": want internal or system`},
		{[]string{"port", "add", "c1", "--type", "internal", "--trunks", "7,x"}, `bad VLAN "x"`},
		{[]string{"port", "add", "c1", "--type", "internal", "--tag", "4095"}, "VLAN 4095 out of range"},
		{[]string{"port", "add", "c1", "--type", "system", "--address", "192.0.2.1/24"}, "netns, addresses and mac apply to internal ports only"},
		{[]string{"port", "add", "abcdefghijklmnop", "--type", "internal"}, "at most 15"},
		{[]string{"port", "del"}, "missing NAME"},
		{[]string{"agent"}, "--config FILE is required"},
		{[]string{"agent", "--config", "x.yaml", "--log-level", "loud"}, `--log-level "loud"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, errOut, code := cli(t, tt.args...)
			if code != 2 || !strings.HasPrefix(errOut, "vxswitch: ") || !strings.Contains(errOut, tt.says) {
				t.Errorf("exit %d, stderr %q; want exit 2 and a message saying %q", code, errOut, tt.says)
			}
		})
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("bad usage reached the agent: %+v", calls)
	}
}

func TestHelpExits0(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"fdb", "--help"}, {"fdb", "add", "-h"}, {"help", "port"}} {
		out, _, code := cli(t, args...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
	}
}

func TestAgentNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{
		{"--socket", sock, "show"},
		{"fdb", "show", "--socket", sock},
		{"fdb", "add", "02:00:00:00:00:01", "--vlan", "7", "--port", "c0", "--socket", sock},
	} {
		_, errOut, code := cli(t, args...)
		if code != 1 || !strings.HasPrefix(errOut, "vxswitch: ") || !strings.Contains(errOut, sock) ||
			!strings.Contains(errOut, "vxswitch agent --config FILE") {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 naming %s and suggesting `vxswitch agent --config FILE`", args, code, errOut, sock)
		}
	}
}

func TestSocketFlagBeatsEnv(t *testing.T) {
	good := controltest.Serve(t, newFake())
	bad := filepath.Join(t.TempDir(), "bad.sock")
	t.Setenv(socketEnv, bad)
	if _, errOut, code := cli(t, "show"); code != 1 || !strings.Contains(errOut, bad) {
		t.Errorf("env ignored: exit %d, %s", code, errOut)
	}
	if _, errOut, code := cli(t, "show", "--socket", good); code != 0 {
		t.Errorf("--socket did not beat the env: exit %d, %s", code, errOut)
	}
	t.Setenv(socketEnv, "")
	if _, errOut, _ := cli(t, "show"); !strings.Contains(errOut, control.DefaultSocket) {
		t.Errorf("default socket not used: %s", errOut)
	}
}

func TestAgentErrorsExitCodes(t *testing.T) {
	f := newFake()
	f.Errs = map[string]error{
		"PortDel":  control.Errorf(control.CodeNotFound, `no such port "x"`),
		"FDBAdd":   control.Errorf(control.CodeBadRequest, `port "c0" does not carry VLAN 8 (access, tag 7)`),
		"Members":  control.Errorf(control.CodeUnavailable, "gossip is off: the agent's configuration has no gossip section"),
		"FDBFlush": errors.New("boom"),
	}
	serveFake(t, f)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"port", "del", "x"}, 1, "vxswitch: no such port \"x\"\n"},
		{[]string{"fdb", "add", "02:00:00:00:00:01", "--vlan", "8", "--port", "c0"}, 2, "vxswitch: port \"c0\" does not carry VLAN 8 (access, tag 7)\n"},
		{[]string{"members"}, 1, "vxswitch: gossip is off: the agent's configuration has no gossip section\n"},
		{[]string{"fdb", "flush"}, 1, "vxswitch: boom\n"},
	}
	for _, tt := range tests {
		_, errOut, code := cli(t, tt.args...)
		if code != tt.code || errOut != tt.want {
			t.Errorf("%v: exit %d, stderr %q; want %d, %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
}

func TestShowOutput(t *testing.T) {
	serveFake(t, newFake())
	out, _, code := cli(t, "show")
	want := "Bridge blue\n" +
		" Port      Type      Mode    Tag  Trunks     MTU   State  Netns\n" +
		" sw-vlan7  internal  access  7    -          9000  up     -\n" +
		" c0        internal  access  7    -          9000  up     /run/netns/blue-c0\n" +
		" tap220    system    trunk   -    7,220-221  1500  down   -\n" +
		"VXLAN 172.16.220.2 port 4789, accept any, VLAN->VNI 7->7\n" +
		" VTEP          Port  Source  VNIs\n" +
		" 172.16.221.2  4789  static  7\n"
	if code != 0 || out != want {
		t.Errorf("exit %d, got:\n%s\nwant:\n%s", code, out, want)
	}
	out, _, _ = cli(t, "show", "--json")
	var got control.ShowReply
	if err := json.Unmarshal([]byte(out), &got); err != nil || !reflect.DeepEqual(got, newFake().ShowReply) {
		t.Errorf("show --json: %v\n%s", err, out)
	}
}

// With more than one worker, show says how many on the bridge line, and
// with cpus: set, which CPUs; otherwise it prints what it always did.
func TestShowWorkers(t *testing.T) {
	for _, tc := range []struct {
		workers int
		cpus    string
		line    string
	}{
		{0, "", "Bridge blue\n"}, {1, "", "Bridge blue\n"}, {2, "", "Bridge blue, 2 workers\n"},
		{1, "1", "Bridge blue, CPUs 1\n"}, {2, "0-1,3", "Bridge blue, 2 workers, CPUs 0-1,3\n"},
	} {
		f := newFake()
		f.ShowReply.Workers, f.ShowReply.CPUs = tc.workers, tc.cpus
		serveFake(t, f)
		out, _, code := cli(t, "show")
		if code != 0 || !strings.HasPrefix(out, tc.line) || strings.Count(out, "Bridge") != 1 {
			t.Errorf("workers %d: exit %d, got:\n%s\nwant first line %q", tc.workers, code, out, tc.line)
		}
	}
}

func TestMembersOutput(t *testing.T) {
	serveFake(t, newFake())
	out, _, code := cli(t, "members")
	want := "Name             Address       Status   VNIs\n" +
		"blue             172.16.220.2  alive    7\n" +
		"green-long-name  172.16.221.2  suspect  7,220\n"
	if code != 0 || out != want {
		t.Errorf("exit %d, got:\n%s\nwant:\n%s", code, out, want)
	}
	out, _, _ = cli(t, "members", "--json")
	var got []map[string]any
	json.Unmarshal([]byte(out), &got)
	if len(got) != 2 || !reflect.DeepEqual(sortedKeys(got[0]), []string{"address", "name", "state", "vnis"}) {
		t.Errorf("members --json: %s", out)
	}
}

func TestStatsOutput(t *testing.T) {
	serveFake(t, newFake())
	out, _, code := cli(t, "stats")
	want := " Port   RX packets  RX bytes  TX packets  TX bytes  MACs  Drops\n" +
		" c0     10          1000      20          2000      1     too_big=2 vlan_not_allowed=1\n" +
		" vxlan  5           0         0           0         -     0\n" +
		"FDB 2 of 8192 entries (0 static); learned 2, moves 0, evictions 0, aged 0, refused 0\n"
	if code != 0 || out != want {
		t.Errorf("exit %d, got:\n%s\nwant:\n%s", code, out, want)
	}
	out, _, _ = cli(t, "stats", "--json")
	var got map[string]any
	json.Unmarshal([]byte(out), &got)
	if !reflect.DeepEqual(sortedKeys(got), []string{"fdb", "ports", "tunnel"}) {
		t.Errorf("stats --json keys %v", sortedKeys(got))
	}
}

func sortedKeys(m map[string]any) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

func TestVersion(t *testing.T) {
	out, _, code := cli(t, "version")
	if code != 0 || !strings.HasPrefix(out, "vxswitch ") || !strings.Contains(out, "go1.") {
		t.Errorf("exit %d, %q", code, out)
	}
}
