package lab

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// Prefix returns a namespace prefix unique to this process: base plus the
// PID in hex (wireguard-go's tests/netns.sh uses "wg-test-$$").
func Prefix(base string) string {
	return fmt.Sprintf("%s%x", base, os.Getpid())
}

// ForTest returns a lab for t whose Close is registered with t.Cleanup
// before anything is created, so the lab is torn down however the test
// ends. The prefix is "vxt<pid>n<counter>", unique per test; namespaces
// that killed test runs left behind are swept first (SweepStale). When the
// test has failed, the cleanup first logs the tail of every background
// process's log. A teardown that leaves anything behind fails the test.
func ForTest(t testing.TB) *Lab {
	t.Helper()
	SweepStale("vxt")
	l := New(fmt.Sprintf("%sn%d", Prefix("vxt"), nextTestID()))
	t.Cleanup(func() {
		if t.Failed() {
			if tails := l.LogTails(30); tails != "" {
				t.Logf("lab %s process logs:\n%s", l.Prefix, tails)
			}
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab teardown: %v (logs kept in %s)", err, l.Dir)
		}
	})
	if l.err != nil {
		t.Fatal(l.err)
	}
	if testing.Verbose() {
		l.Trace = testWriter{t}
	}
	return l
}

var testIDs atomic.Int32

// nextTestID numbers the labs of one test binary.
func nextTestID() int { return int(testIDs.Add(1)) - 1 }

// testWriter sends trace lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
