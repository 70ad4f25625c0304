package gossip

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// joinLoop joins Config.Join whenever this node is alone: at start, and
// again if every other member goes away, until Leave or Shutdown.
func (g *Gossip) joinLoop() {
	const (
		minBackoff = time.Second
		maxBackoff = 30 * time.Second
		idleCheck  = 10 * time.Second // how soon "alone again" is noticed
	)
	backoff := minBackoff
	failing, joined := false, false
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-g.done:
			return
		case <-t.C:
		}
		if g.left.Load() {
			return
		}
		wait := idleCheck
		if g.ml.NumMembers() <= 1 {
			n, err := g.ml.Join(g.cfg.Join)
			err = flatten(err)
			select {
			case <-g.done:
				return
			default:
			}
			switch {
			case err != nil:
				level := slog.LevelWarn // first failure of a streak; then quieter
				if failing {
					level = slog.LevelDebug
				}
				g.log.Log(context.Background(), level, "join failed; retrying", "seeds", g.cfg.Join, "retry_in", backoff, "err", err)
				failing, wait = true, backoff
				backoff = min(2*backoff, maxBackoff)
			case failing || !joined:
				g.log.Info("joined", "seeds", g.cfg.Join, "answered", n)
				fallthrough
			default:
				failing, joined, backoff = false, true, minBackoff
			}
		}
		t.Reset(wait)
	}
}

// flatten turns memberlist's multi-line go-multierror ("1 error
// occurred:\n\t* ...") into one line for the log; errors.Is still sees
// the parts.
func flatten(err error) error {
	w, ok := err.(interface{ WrappedErrors() []error })
	if !ok {
		return err
	}
	return joinedErrors(w.WrappedErrors())
}

type joinedErrors []error

func (e joinedErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e joinedErrors) Unwrap() []error { return e }
