package lab

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SweepStale deletes the namespaces that an earlier run killed before its
// Close could run (SIGKILL, a crash, a lost machine) left behind: those
// named "<base><pid in hex>...-..." whose process no longer exists and
// none of whose lab's namespaces has a process in it (a lab left running
// on purpose, demo -keep, still has its agents). It returns the names it
// deleted. Namespaces of live processes are never touched.
func SweepStale(base string) []string {
	ents, _ := os.ReadDir("/run/netns")
	groups := map[string][]string{} // lab prefix -> namespaces
	var order []string
	for _, e := range ents {
		name := e.Name()
		pid, ok := stalePID(base, name)
		if !ok || processExists(pid) {
			continue
		}
		prefix, _, _ := strings.Cut(name, "-")
		if _, ok := groups[prefix]; !ok {
			order = append(order, prefix)
		}
		groups[prefix] = append(groups[prefix], name)
	}
	l := &Lab{ctx: context.Background()}
	var gone []string
	for _, prefix := range order {
		busy := false
		for _, ns := range groups[prefix] {
			out, err := l.run(context.Background(), 5*time.Second, "", "ip", "netns", "pids", ns)
			if err != nil || strings.TrimSpace(out) != "" {
				busy = true
			}
		}
		if busy {
			continue
		}
		for _, ns := range groups[prefix] {
			if _, err := l.run(context.Background(), 10*time.Second, "", "ip", "netns", "del", ns); err == nil {
				gone = append(gone, ns)
			}
		}
	}
	return gone
}

// stalePID parses "<base><hex pid>" up to the first '-' or 'n' of name.
func stalePID(base, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, base)
	if !ok {
		return 0, false
	}
	hex, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	hex, _, _ = strings.Cut(hex, "n")
	pid, err := strconv.ParseUint(hex, 16, 31)
	if err != nil || pid == 0 {
		return 0, false
	}
	return int(pid), true
}

func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
