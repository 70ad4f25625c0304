package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newMemberlistLogger returns a *log.Logger for memberlist.Config.Logger
// that turns memberlist's "[LEVEL] memberlist: message" lines into records
// of l at the matching slog level, with lib=memberlist, so its reasons
// ("no installed keys could decrypt the message", "Conflicting address")
// land in the agent's log next to ours.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(logWriter{l}, "", 0)
}

type logWriter struct{ l *slog.Logger }

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

// Write is called by log.Logger once per line, serialised by its mutex.
func (w logWriter) Write(p []byte) (int, error) {
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
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	w.l.Log(ctx, level, string(line), "lib", "memberlist")
	return len(p), nil
}
