package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"

	"github.com/vxswitch/vxswitch/bench/lab"
)

// labs hands out labs and tears every open one down on SIGINT/SIGTERM;
// after a signal it hands out no more.
type labs struct {
	mu          sync.Mutex
	open        []*lab.Lab // guarded by mu
	interrupted bool       // guarded by mu
	prefix      string
}

// New returns a fresh lab named "<prefix>n<i>-...".
func (s *labs) New(i int) (*lab.Lab, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.interrupted {
		return nil, errors.New("interrupted")
	}
	l := lab.New(fmt.Sprintf("%sn%d", s.prefix, i))
	s.open = append(s.open, l)
	return l, nil
}

// Close tears l down and forgets it.
func (s *labs) Close(l *lab.Lab) {
	if err := l.Close(); err != nil {
		fmt.Printf("   teardown: %v\n", err)
	}
	s.mu.Lock()
	s.open = slices.DeleteFunc(s.open, func(o *lab.Lab) bool { return o == l })
	s.mu.Unlock()
}

// waitIfInterrupted blocks for good once a signal arrived: the handler
// tears down and exits, and nothing half-measured may be reported or
// written to the results file.
func (s *labs) waitIfInterrupted() {
	s.mu.Lock()
	in := s.interrupted
	s.mu.Unlock()
	if in {
		select {}
	}
}

func (s *labs) onSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-ch
		s.mu.Lock()
		s.interrupted = true
		open := slices.Clone(s.open)
		s.mu.Unlock()
		fmt.Fprintf(os.Stderr, "\nvxbench: %v: tearing the labs down\n", sig)
		for _, l := range open {
			if err := l.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "vxbench: teardown: %v\n", err)
			}
		}
		os.Exit(130)
	}()
}
