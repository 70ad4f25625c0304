package gossip

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestMemberlistLogger(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})).With("component", "gossip")
	ml := newMemberlistLogger(l)
	ml.Printf("[ERR] memberlist: failed to receive: no installed keys could decrypt the message from=127.0.0.1:7947")
	ml.Printf("[WARN] memberlist: Refuting a dead message (from: b)")
	ml.Printf("[INFO] memberlist: Marking b as failed, suspect timeout reached (0 peer confirmations)")
	ml.Printf("[DEBUG] memberlist: Stream connection from=127.0.0.1:1234")
	ml.Printf("[ERROR] memberlist: Failed to compress payload: x")
	ml.Printf("Err: Could not set the deadline: y")
	want := []string{
		`level=ERROR msg="failed to receive: no installed keys could decrypt the message from=127.0.0.1:7947" component=gossip lib=memberlist`,
		`level=WARN msg="Refuting a dead message (from: b)" component=gossip lib=memberlist`,
		`level=INFO msg="Marking b as failed, suspect timeout reached (0 peer confirmations)" component=gossip lib=memberlist`,
		`level=DEBUG msg="Stream connection from=127.0.0.1:1234" component=gossip lib=memberlist`,
		`level=ERROR msg="Failed to compress payload: x" component=gossip lib=memberlist`,
		`level=INFO msg="Err: Could not set the deadline: y" component=gossip lib=memberlist`,
	}
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Below the handler's level nothing is formatted or written.
	buf.Reset()
	quiet := newMemberlistLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	quiet.Printf("[DEBUG] memberlist: noise")
	if buf.Len() != 0 {
		t.Errorf("debug line written at info level: %q", buf.String())
	}
}

// A flood of lines (a peer with the wrong key, garbage on the gossip
// port) is cut to a burst and then one line per interval; the first line
// logged after some were dropped says how many.
func TestMemberlistLoggerLimit(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	ml := newMemberlistLogger(l)
	w := ml.Writer().(*logWriter)
	now := time.Unix(1000, 0)
	w.now = func() time.Time { return now }
	for range 1000 {
		ml.Printf("[ERR] memberlist: failed to receive: no installed keys could decrypt the message")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != memberlistLogBurst {
		t.Fatalf("1000 lines at once: %d logged, want the burst of %d", len(lines), memberlistLogBurst)
	}
	buf.Reset()
	now = now.Add(memberlistLogEvery)
	ml.Printf("[WARN] memberlist: Refuting a dead message (from: b)")
	ml.Printf("[WARN] memberlist: dropped")
	want := fmt.Sprintf(`level=WARN msg="Refuting a dead message (from: b)" lib=memberlist suppressed=%d`, 1000-memberlistLogBurst)
	if got := strings.TrimSpace(buf.String()); got != want {
		t.Fatalf("after one interval: got\n%s\nwant\n%s", got, want)
	}
	buf.Reset()
	now = now.Add(memberlistLogEvery)
	ml.Printf("[INFO] memberlist: next")
	if got := strings.TrimSpace(buf.String()); got != `level=INFO msg=next lib=memberlist suppressed=1` {
		t.Fatalf("got %q", got)
	}
}
