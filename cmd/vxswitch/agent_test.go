package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// inProcessAgent runs the agent command in-process with config (no ports,
// so no root) until it answers show; stop ends it and returns its exit
// code.
func inProcessAgent(t *testing.T, config string) (sock string, logs *bytes.Buffer, stop func() int) {
	t.Helper()
	dir := t.TempDir()
	sock = filepath.Join(dir, "a.sock")
	cfgPath := filepath.Join(dir, "vxswitch.yaml")
	os.WriteFile(cfgPath, []byte(config+"control:\n  socket: "+sock+"\n"), 0o644)
	t.Setenv(socketEnv, "")

	ctx, cancel := context.WithCancel(context.Background())
	logs = &bytes.Buffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"agent", "--config", cfgPath}, &bytes.Buffer{}, logs) }()
	stop = func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(5 * time.Second):
			t.Fatal("agent did not stop within 5 s")
			return -1
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, code := cli(t, "show", "--socket", sock); code == 0 {
			return sock, logs, stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not answer within 5 s; exit %v; logs:\n%s", stop(), logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The agent command in-process, without devices: no ports, so no root.
func TestAgentCommand(t *testing.T) {
	sock, logs, stop := inProcessAgent(t, "bridge: lab\n")
	if out, _, _ := cli(t, "show", "--socket", sock); !strings.HasPrefix(out, "Bridge lab\n") {
		t.Errorf("show: %q", out)
	}
	// A second agent on the same socket refuses, exit 1.
	cfgPath := filepath.Join(filepath.Dir(sock), "vxswitch.yaml")
	_, errOut, code := cli(t, "agent", "--config", cfgPath)
	if code != 1 || errOut != "vxswitch: another vxswitch agent is already running on "+sock+"\n" {
		t.Errorf("second agent: exit %d, %q", code, errOut)
	}
	if code := stop(); code != 0 {
		t.Errorf("agent exit %d; logs:\n%s", code, logs.String())
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

// The agent runs Go code on control.Procs CPUs, says so, and gives the
// old setting back when it stops; GOMAXPROCS in the environment wins.
func TestAgentGOMAXPROCS(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	for _, tc := range []struct {
		env, config string
		want        int
	}{
		{"", "", 1},
		{"", "workers: 2\n", min(2, prev)},
		{"", "busy-poll: 1ms\n", 1},
		{"1", "workers: 2\n", prev},
	} {
		t.Setenv("GOMAXPROCS", tc.env)
		_, logs, stop := inProcessAgent(t, tc.config)
		got := runtime.GOMAXPROCS(0)
		code := stop()
		if got != tc.want {
			t.Errorf("GOMAXPROCS=%q, config %q: running with %d Ps, want %d", tc.env, tc.config, got, tc.want)
		}
		said := strings.Contains(logs.String(), "gomaxprocs="+strconv.Itoa(tc.want))
		if said != (tc.env == "") {
			t.Errorf("GOMAXPROCS=%q, config %q: log says gomaxprocs=%d: %v; logs:\n%s", tc.env, tc.config, tc.want, said, logs.String())
		}
		if code != 0 {
			t.Errorf("agent exit %d", code)
		}
		if after := runtime.GOMAXPROCS(0); after != prev {
			t.Fatalf("GOMAXPROCS %d after the agent stopped, want %d back", after, prev)
		}
	}
}

func TestAgentBadConfig(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(cfgPath, []byte("mtu: 1\nports:\n  - name: c0\n    type: internal\n    tag: 5000\n"), 0o644)
	_, errOut, code := cli(t, "agent", "--config", cfgPath)
	want := "vxswitch: " + cfgPath + ":1: mtu: MTU 1 out of range 68-65535\n" +
		"vxswitch: " + cfgPath + ":5: ports[0].tag: VLAN 5000 out of range 0-4094\n"
	if code != 1 || errOut != want {
		t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", code, errOut, want)
	}
}
