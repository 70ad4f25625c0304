package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"time"

	"golang.org/x/time/rate"
)

// Lines memberlist may log, on average and in a burst, before the rest is
// counted instead: a peer with the wrong key, or anyone sending garbage to
// the gossip port, makes memberlist log a line per packet.
const (
	memberlistLogEvery = 100 * time.Millisecond
	memberlistLogBurst = 20
)

// newMemberlistLogger returns a *log.Logger for memberlist.Config.Logger
// that turns memberlist's "[LEVEL] memberlist: message" lines into records
// of l at the matching slog level, with lib=memberlist, so its reasons
// ("no installed keys could decrypt the message", "Conflicting address")
// land in the agent's log next to ours. Past memberlistLogBurst lines it
// logs one every memberlistLogEvery, and the next line it logs after
// dropping some says how many (suppressed=N).
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(&logWriter{l: l, limit: rate.NewLimiter(rate.Every(memberlistLogEvery), memberlistLogBurst), now: time.Now}, "", 0)
}

// logWriter is called by log.Logger once per line, serialised by its
// mutex, so its fields need no lock of their own.
type logWriter struct {
	l          *slog.Logger
	limit      *rate.Limiter
	now        func() time.Time
	suppressed int
}

var memberlistLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"[DEBUG] ", slog.LevelDebug},
	{"[INFO] ", slog.LevelInfo},
	{"[WARN] ", slog.LevelWarn},
	{"[ERR] ", slog.LevelError},
	{"[ERROR] ", slog.LevelError},
}

func (w *logWriter) Write(p []byte) (int, error) {
	line := bytes.TrimRight(p, "\n")
	level := slog.LevelInfo // memberlist's few unprefixed lines
	for _, ml := range memberlistLevels {
		if rest, ok := bytes.CutPrefix(line, []byte(ml.prefix)); ok {
			line, level = rest, ml.level
			break
		}
	}
	ctx := context.Background()
	if !w.l.Enabled(ctx, level) {
		return len(p), nil
	}
	if !w.limit.AllowN(w.now(), 1) {
		w.suppressed++
		return len(p), nil
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	args := []any{"lib", "memberlist"}
	if w.suppressed > 0 {
		args = append(args, "suppressed", w.suppressed)
		w.suppressed = 0
	}
	w.l.Log(ctx, level, string(line), args...)
	return len(p), nil
}
