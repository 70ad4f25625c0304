package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultExecTimeout bounds every Exec that is not given its own context,
// so a stuck command cannot hang a test or a benchmark.
const DefaultExecTimeout = 60 * time.Second

// ErrClosed is returned by every operation on a Lab after Close began.
var ErrClosed = errors.New("lab: closed")

// A Lab is one set of namespaces, interfaces and processes, torn down
// together by Close. Its methods are safe for concurrent use; Close may be
// called from a signal handler's goroutine while another goroutine is
// still building, and unblocks that goroutine's commands.
type Lab struct {
	// Prefix starts every namespace name; unique to the run.
	Prefix string
	// Dir is a private temporary directory for configs, sockets and
	// logs; removed by Close unless KeepDir is set.
	Dir string
	// KeepDir leaves Dir in place after Close (for reading logs).
	KeepDir bool
	// Trace, when set, receives every command the lab runs, one per line,
	// prefixed with "$ ", before it runs.
	Trace io.Writer
	// Detach starts background processes so that they survive this
	// process's exit (no parent-death signal). Only for a lab that is
	// deliberately left running (demo -keep); Close still stops them.
	Detach bool

	ctx    context.Context // cancelled when Close begins
	cancel context.CancelFunc
	err    error // set by New if the lab cannot be used

	mu      sync.Mutex
	undo    []undoStep // guarded by mu; run in reverse by Close
	procs   []*Proc    // guarded by mu
	nprocs  int        // guarded by mu; numbers log files
	closing bool       // guarded by mu

	closeOnce sync.Once
	closeErr  error
}

type undoStep struct {
	what string
	fn   func() error
}

// New returns an empty lab whose namespace names start with prefix. Call
// Close when done (ForTest does it for tests); nothing is created yet.
func New(prefix string) *Lab {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Lab{Prefix: prefix, ctx: ctx, cancel: cancel}
	dir, err := os.MkdirTemp("", prefix+"-")
	if err != nil {
		l.err = fmt.Errorf("lab %s: temp dir: %w", prefix, err)
	}
	l.Dir = dir
	return l
}

// Context is cancelled when Close begins.
func (l *Lab) Context() context.Context { return l.ctx }

// NSName returns the full namespace name for the short name.
func (l *Lab) NSName(name string) string { return l.Prefix + "-" + name }

// NSPath returns the bind-mount path of namespace ns ("/run/netns/NS").
func NSPath(ns string) string { return "/run/netns/" + ns }

// check reports why the lab cannot be used, if it cannot.
func (l *Lab) check() error {
	if l.err != nil {
		return l.err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return ErrClosed
	}
	return nil
}

// onClose records an undo step; Close runs the steps in reverse order.
func (l *Lab) onClose(what string, fn func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.undo = append(l.undo, undoStep{what, fn})
}

// OnClose registers fn to run when the lab closes, before the steps
// registered earlier (reverse order).
func (l *Lab) OnClose(what string, fn func() error) { l.onClose(what, fn) }

// NS creates the namespace "<prefix>-<name>" with loopback up and IPv6
// duplicate address detection off (addresses are usable at once), and
// returns its full name, which the other methods take.
func (l *Lab) NS(name string) (string, error) {
	if err := l.check(); err != nil {
		return "", err
	}
	ns := l.NSName(name)
	// Registered before `ip netns add`, so a half-made namespace goes too.
	l.onClose("delete namespace "+ns, func() error { return l.deleteNS(ns) })
	if _, err := l.Exec("", "ip", "netns", "add", ns); err != nil {
		return "", err
	}
	for _, args := range [][]string{
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		// /proc/sys/net shows the namespace of the process that opens it.
		{"ip", "netns", "exec", ns, "sh", "-c",
			"echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad && echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad"},
	} {
		if _, err := l.Exec("", args...); err != nil {
			return "", err
		}
	}
	return ns, nil
}

// deleteNS kills whatever still runs inside ns (a process keeps a
// namespace alive after `ip netns del`) and deletes it.
func (l *Lab) deleteNS(ns string) error {
	if _, err := os.Stat(NSPath(ns)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if out, err := l.run(context.Background(), 5*time.Second, "", "ip", "netns", "pids", ns); err == nil {
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_, err := l.run(context.Background(), 10*time.Second, "", "ip", "netns", "del", ns)
	return err
}

// Veth creates a veth pair ifA (in nsA) <-> ifB (in nsB) with the given
// MTU (0 = default). The ends are created inside their namespaces; an
// empty namespace means the root one, whose end is deleted by Close.
func (l *Lab) Veth(nsA, ifA, nsB, ifB string, mtu int) error {
	if err := l.check(); err != nil {
		return err
	}
	args := []string{"ip", "link", "add", ifA}
	if nsA != "" {
		args = append(args, "netns", nsA)
	} else {
		l.onClose("delete "+ifA, func() error { return l.deleteLink(ifA) })
	}
	if mtu > 0 {
		args = append(args, "mtu", fmt.Sprint(mtu))
	}
	args = append(args, "type", "veth", "peer", "name", ifB)
	if nsB != "" {
		args = append(args, "netns", nsB)
	} else {
		l.onClose("delete "+ifB, func() error { return l.deleteLink(ifB) })
	}
	if mtu > 0 {
		args = append(args, "mtu", fmt.Sprint(mtu))
	}
	_, err := l.Exec("", args...)
	return err
}

func (l *Lab) deleteLink(name string) error {
	if _, err := os.Stat("/sys/class/net/" + name); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	_, err := l.run(context.Background(), 10*time.Second, "", "ip", "link", "del", name)
	return err
}

// Addr adds the address cidr ("192.0.2.10/24", "2001:db8:7::10/64") to
// ifname in ns. IPv6 addresses are added without duplicate detection.
func (l *Lab) Addr(ns, ifname, cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return fmt.Errorf("lab: address %q: %w", cidr, err)
	}
	args := []string{"ip", "addr", "add", cidr, "dev", ifname}
	if p.Addr().Is6() {
		args = append(args, "nodad")
	}
	_, err = l.Exec(ns, args...)
	return err
}

// Up sets ifname in ns up.
func (l *Lab) Up(ns, ifname string) error {
	_, err := l.Exec(ns, "ip", "link", "set", ifname, "up")
	return err
}

// SetMTU sets the MTU of ifname in ns.
func (l *Lab) SetMTU(ns, ifname string, mtu int) error {
	_, err := l.Exec(ns, "ip", "link", "set", ifname, "mtu", fmt.Sprint(mtu))
	return err
}

// Exec runs args in namespace ns ("" = the current one) and returns its
// combined output. It fails after DefaultExecTimeout, or at once when the
// lab closes. The error names the command and carries its output.
func (l *Lab) Exec(ns string, args ...string) (string, error) {
	return l.ExecContext(context.Background(), ns, args...)
}

// ExecContext is Exec with a caller's context; DefaultExecTimeout applies
// only when ctx has no deadline.
func (l *Lab) ExecContext(ctx context.Context, ns string, args ...string) (string, error) {
	if err := l.check(); err != nil {
		return "", err
	}
	ctx, stop := mergeCancel(ctx, l.ctx)
	defer stop()
	var timeout time.Duration
	if _, ok := ctx.Deadline(); !ok {
		timeout = DefaultExecTimeout
	}
	return l.run(ctx, timeout, ns, args...)
}

// run runs a command without the closed check (Close uses it).
func (l *Lab) run(ctx context.Context, timeout time.Duration, ns string, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("lab: empty command")
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	argv := nsArgs(ns, args)
	l.trace(argv)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		return string(out), &ExecError{Args: argv, Out: string(out), Err: err}
	}
	return string(out), nil
}

// An ExecError is a command that failed: its argv, output and cause.
type ExecError struct {
	Args []string
	Out  string
	Err  error
}

func (e *ExecError) Error() string {
	out := strings.TrimSpace(e.Out)
	if out != "" {
		out = ": " + out
	}
	return fmt.Sprintf("%s: %v%s", strings.Join(e.Args, " "), e.Err, out)
}

func (e *ExecError) Unwrap() error { return e.Err }

// nsArgs wraps args to run in ns: `ip -n NS ...` for ip itself (cheaper),
// `ip netns exec NS ...` otherwise (which also mounts the namespace's own
// /sys, so /sys/class/net shows its interfaces).
func nsArgs(ns string, args []string) []string {
	if ns == "" {
		return args
	}
	if args[0] == "ip" && (len(args) < 2 || args[1] != "netns") {
		return append([]string{"ip", "-n", ns}, args[1:]...)
	}
	return append([]string{"ip", "netns", "exec", ns}, args...)
}

func (l *Lab) trace(argv []string) {
	if l.Trace != nil {
		fmt.Fprintf(l.Trace, "$ %s\n", strings.Join(argv, " "))
	}
}

// mergeCancel returns a context that ends when either a or b ends, keeping
// a's deadline and values.
func mergeCancel(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(a)
	stop := context.AfterFunc(b, func() { cancel(ErrClosed) })
	return ctx, func() { stop(); cancel(context.Canceled) }
}

// WaitFor polls cond until it returns nil, the timeout passes or the lab
// closes; it returns cond's last error, wrapped, on failure. Polls start
// at 20 ms and back off to 250 ms. A condition that can never become true
// (a daemon died) returns Permanent(err) to stop the wait at once.
func (l *Lab) WaitFor(cond func() error, timeout time.Duration) error {
	return WaitFor(l.ctx, cond, timeout)
}

// WaitFor is Lab.WaitFor for any context.
func WaitFor(ctx context.Context, cond func() error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := 20 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %v: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", context.Cause(ctx), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 250*time.Millisecond)
	}
}

// Permanent wraps err so that WaitFor stops polling and returns err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Namespaces lists the lab's namespaces that currently exist.
func (l *Lab) Namespaces() []string {
	ents, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), l.Prefix+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// Close stops every process the lab started and deletes its namespaces
// and root-namespace interfaces, in reverse order of creation, then
// removes Dir (unless KeepDir). It is idempotent and returns every error
// met on the way; it never stops early.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closing = true
		undo := l.undo
		l.undo = nil
		l.mu.Unlock()
		l.cancel()
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			if err := undo[i].fn(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", undo[i].what, err))
			}
		}
		if left := l.Namespaces(); len(left) > 0 {
			errs = append(errs, fmt.Errorf("lab %s: namespaces left behind: %v", l.Prefix, left))
		}
		if len(errs) > 0 {
			l.KeepDir = true
		}
		if !l.KeepDir && l.Dir != "" {
			if err := os.RemoveAll(l.Dir); err != nil {
				errs = append(errs, err)
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}
