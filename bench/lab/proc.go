package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// A Proc is a background process started by Lab.Start. Its stdout and
// stderr go to Log, a file in the lab's directory.
type Proc struct {
	Name string   // short name used in messages and the log file name
	Args []string // argv as run (including the `ip netns exec` wrapper)
	Log  string   // path of the combined stdout/stderr log

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result; read after done
}

// Start runs args in namespace ns in the background. The process is
// stopped by Close (SIGTERM, then SIGKILL after 3 s), or earlier by
// Proc.Stop. It runs in its own process group, so a terminal's Ctrl-C
// reaches only the program, which then tears the lab down in order.
func (l *Lab) Start(ns string, args ...string) (*Proc, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, errors.New("lab: empty command")
	}
	l.mu.Lock()
	l.nprocs++
	n := l.nprocs
	l.mu.Unlock()
	name := progName(args)
	argv := nsArgs(ns, args)
	p := &Proc{
		Name: name,
		Args: argv,
		Log:  filepath.Join(l.Dir, fmt.Sprintf("%02d-%s-%s.log", n, strings.TrimPrefix(ns, l.Prefix+"-"), name)),
		done: make(chan struct{}),
	}
	f, err := os.Create(p.Log)
	if err != nil {
		return nil, fmt.Errorf("lab: start %s: %w", name, err)
	}
	defer f.Close() // the child has its own copy
	fmt.Fprintf(f, "# %s\n", strings.Join(argv, " "))
	l.trace(append(argv[:len(argv):len(argv)], "&"))
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout = f
	p.cmd.Stderr = f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !l.Detach {
		// Dies with us even if we are killed before Close runs.
		p.cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	// Registered before the start so that Close cannot miss it.
	l.onClose("stop "+name, func() error { return p.Stop() })
	if err := p.cmd.Start(); err != nil {
		close(p.done)
		p.err = err
		return nil, fmt.Errorf("lab: start %s: %w", strings.Join(argv, " "), err)
	}
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// progName names a command for messages and log files: the program's
// base name, looking past an `env VAR=value ...` prefix.
func progName(args []string) string {
	i := 0
	if filepath.Base(args[0]) == "env" {
		for i = 1; i < len(args)-1 && strings.Contains(args[i], "="); i++ {
		}
	}
	return filepath.Base(args[i])
}

// Pid returns the process ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and its Wait error.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Alive returns nil while the process runs, and otherwise an error that
// says how it ended with the end of its log. The error is Permanent, so a
// WaitFor condition that returns it fails fast when a daemon dies during
// start-up.
func (p *Proc) Alive() error {
	if ok, err := p.Exited(); ok {
		return Permanent(fmt.Errorf("%s exited (%v); log %s:\n%s", p.Name, err, p.Log, p.Tail(20)))
	}
	return nil
}

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) error {
	if ok, _ := p.Exited(); ok {
		return nil
	}
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Stop ends the process: SIGTERM to its group, SIGKILL after 3 s. It is
// idempotent; an exit caused by the signal is not an error.
func (p *Proc) Stop() error {
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	if ok, _ := p.Exited(); ok {
		return nil
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(3 * time.Second):
	}
	_ = p.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s (pid %d) did not die after SIGKILL", p.Name, p.Pid())
	}
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Procs returns the processes started so far.
func (l *Lab) Procs() []*Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Proc(nil), l.procs...)
}

// LogTails returns, for every process started, a header line and the last
// n lines of its log: what a failed test or command prints.
func (l *Lab) LogTails(n int) string {
	var b strings.Builder
	for _, p := range l.Procs() {
		state := "running"
		if ok, err := p.Exited(); ok {
			state = fmt.Sprintf("exited: %v", err)
		}
		fmt.Fprintf(&b, "--- %s (%s), log %s:\n%s\n", p.Name, state, p.Log, p.Tail(n))
	}
	return b.String()
}

// WriteTeardownScript writes Dir/teardown.sh, a shell script that does
// what Close would (stop the processes, delete the namespaces and Dir),
// for a lab deliberately left running, and returns its path.
func (l *Lab) WriteTeardownScript() (string, error) {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Tears down lab " + l.Prefix + ".\n")
	for _, p := range l.Procs() {
		if ok, _ := p.Exited(); !ok {
			fmt.Fprintf(&b, "kill -TERM -- -%d 2>/dev/null  # %s\n", p.Pid(), p.Name)
		}
	}
	b.WriteString("sleep 1\n")
	ns := l.Namespaces()
	for i := len(ns) - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "for p in $(ip netns pids %s); do kill -9 $p; done; ip netns del %s\n", ns[i], ns[i])
	}
	fmt.Fprintf(&b, "rm -rf %s\n", l.Dir)
	path := filepath.Join(l.Dir, "teardown.sh")
	return path, os.WriteFile(path, []byte(b.String()), 0o755)
}
