package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The agent command in-process, without devices: no ports, so no root.
func TestAgentCommand(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "a.sock")
	cfgPath := filepath.Join(dir, "vxswitch.yaml")
	os.WriteFile(cfgPath, []byte("bridge: lab\ncontrol:\n  socket: "+sock+"\n"), 0o644)
	t.Setenv(socketEnv, "")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"agent", "--config", cfgPath}, &bytes.Buffer{}, &logs) }()

	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _, code := cli(t, "show", "--socket", sock)
		if code == 0 {
			if !strings.HasPrefix(out, "Bridge lab\n") {
				t.Errorf("show: %q", out)
			}
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("agent did not answer within 5 s; exit %v; logs:\n%s", <-done, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A second agent on the same socket refuses, exit 1.
	_, errOut, code := cli(t, "agent", "--config", cfgPath)
	if code != 1 || errOut != "vxswitch: another vxswitch agent is already running on "+sock+"\n" {
		t.Errorf("second agent: exit %d, %q", code, errOut)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("agent exit %d; logs:\n%s", code, logs.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("agent did not stop within 5 s")
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
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
