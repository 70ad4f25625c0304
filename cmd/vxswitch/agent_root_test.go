package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/internal/testutil"
)

// buildBinary builds cmd/vxswitch into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vxswitch")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// linkExists reports whether interface name exists in this namespace.
func linkExists(name string) bool {
	return exec.Command("ip", "link", "show", "dev", name).Run() == nil
}

// removeLinksAtEnd deletes leftover interfaces when the test ends, even if
// it fails; it is registered before anything creates them.
func removeLinksAtEnd(t *testing.T, names ...string) {
	for _, n := range names {
		_ = exec.Command("ip", "link", "del", n).Run()
	}
	t.Cleanup(func() {
		for _, n := range names {
			_ = exec.Command("ip", "link", "del", n).Run()
		}
	})
}

func TestAgentBinaryRoot(t *testing.T) {
	testutil.RequireRoot(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	pfx := testutil.Prefix("vxc")
	a, b := pfx+"a", pfx+"b"
	removeLinksAtEnd(t, a, b)
	sock := filepath.Join(dir, "run", "vxswitch.sock")
	cfg := filepath.Join(dir, "vxswitch.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, `bridge: blue
mtu: 9000
ports:
  - name: %s
    type: internal
    tag: 7
  - name: %s
    type: internal
    trunks: [7, 220-221]
control:
  socket: %s
`, a, b, sock), 0o644)

	var logs bytes.Buffer
	agent := exec.Command(bin, "agent", "--config", cfg)
	agent.Stdout, agent.Stderr = &logs, &logs
	agent.Env = append(os.Environ(), "VXSWITCH_SOCKET=") // the config's socket
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	t.Cleanup(func() {
		if agent.ProcessState == nil {
			agent.Process.Kill()
			<-exited
		}
	})

	cli := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--socket", sock)...).Output()
		return string(out), err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := cli("show"); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("agent exited early: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not answer within 10 s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	show, err := cli("show")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Bridge blue$`),
		regexp.MustCompile(`(?m)^ ` + a + ` +internal +access +7 +- +9000 +up `),
		regexp.MustCompile(`(?m)^ ` + b + ` +internal +trunk +- +7,220-221 +9000 +up `),
	} {
		if !want.MatchString(show) {
			t.Errorf("show does not match %s:\n%s", want, show)
		}
	}
	for _, n := range []string{a, b} {
		out, err := exec.Command("ip", "-o", "link", "show", "dev", n).Output()
		if err != nil || !strings.Contains(string(out), "mtu 9000") {
			t.Errorf("TAP %s: %v %s; want it to exist with mtu 9000", n, err, out)
		}
	}
	out, err := cli("fdb", "show", "--json")
	var entries []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &entries) != nil {
		t.Errorf("fdb show --json: %v %q", err, out)
	}
	for _, e := range entries {
		if len(e) != 6 || e["port"] == nil || e["remote"] == nil {
			t.Errorf("fdb entry %v: want the keys port, vlan, mac, age, static, remote", e)
		}
	}
	t.Logf("fdb show --json: %d entries", len(entries))

	start := time.Now()
	agent.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		t.Logf("agent stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Errorf("agent exit: %v\n%s", err, logs.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("agent still running 5 s after SIGTERM:\n%s", logs.String())
	}
	for _, n := range []string{a, b} {
		if linkExists(n) {
			t.Errorf("TAP %s left behind", n)
		}
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

func TestAgentBinaryFailedStartRoot(t *testing.T) {
	testutil.RequireRoot(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	pfx := testutil.Prefix("vxc")
	c, missing := pfx+"c", pfx+"m"
	removeLinksAtEnd(t, c)
	sock := filepath.Join(dir, "vxswitch.sock")
	tests := []struct {
		name string
		yaml string
		says *regexp.Regexp
	}{
		{"config errors", fmt.Sprintf("ports:\n  - name: %s\n    type: internal\n  - name: x1\n    type: internal\n    tag: 5000\nmtu: 10\ncontrol: {socket: %s}\n", c, sock),
			regexp.MustCompile(`(?m)^vxswitch: \S+:6: ports\[1\]\.tag: VLAN 5000 out of range 0-4094\nvxswitch: \S+:7: mtu: MTU 10 out of range 68-65535$`)},
		// Valid, but the second port's device does not exist: the TAP of
		// the first, already created, must be removed again.
		{"device missing", fmt.Sprintf("ports:\n  - name: %s\n    type: internal\n  - name: %s\n    type: system\ncontrol: {socket: %s}\n", c, missing, sock),
			regexp.MustCompile(`(?m)^vxswitch: .*port "` + missing + `"`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "bad.yaml")
			os.WriteFile(cfg, []byte(tt.yaml), 0o644)
			cmd := exec.Command(bin, "agent", "--config", cfg)
			cmd.Env = append(os.Environ(), "VXSWITCH_SOCKET=")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Errorf("agent: %v, want exit status 1", err)
			}
			if !tt.says.MatchString(stderr.String()) {
				t.Errorf("stderr does not match %s:\n%s", tt.says, stderr.String())
			}
			if linkExists(c) {
				t.Errorf("TAP %s left behind", c)
			}
			if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket left behind: %v", err)
			}
		})
	}
}
