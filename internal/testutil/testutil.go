// Package testutil holds helpers for tests that need root and network
// namespaces. Tests that need root skip only outside CI; with CI set they
// fail, so CI never passes by skipping.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RequireRoot skips the test when not root, unless CI is set, in which case
// it fails.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("needs root; CI is set, so this fails instead of skipping")
	}
	t.Skip("needs root (set CI=true to turn this skip into a failure)")
}

// Prefix returns a namespace/interface name prefix unique to this process:
// base plus the PID in base 36, short enough for 15-byte interface names
// when base is at most 4 bytes.
func Prefix(base string) string {
	return fmt.Sprintf("%s%s", base, strings.ToLower(fmt.Sprintf("%x", os.Getpid()&0xffff)))
}

// Run runs a command and fails the test with its output if it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// NetNS creates the network namespace name (removing a stale one first)
// and deletes it when the test ends, even when it fails. Interfaces inside
// go with it.
func NetNS(t testing.TB, name string) string {
	t.Helper()
	_ = exec.Command("ip", "netns", "del", name).Run()
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	Run(t, "ip", "netns", "add", name)
	Run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// InNS runs a command inside namespace ns and fails the test if it fails.
func InNS(t testing.TB, ns string, args ...string) string {
	t.Helper()
	return Run(t, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// Veth creates a veth pair a<->b in the current namespace and removes it
// when the test ends.
func Veth(t testing.TB, a, b string) {
	t.Helper()
	_ = exec.Command("ip", "link", "del", a).Run()
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", a).Run() })
	Run(t, "ip", "link", "add", a, "type", "veth", "peer", "name", b)
}
