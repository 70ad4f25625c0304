package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// ErrAlreadyRunning means another agent holds the control socket.
var ErrAlreadyRunning = errors.New("another vxswitch agent is already running")

// socketClaim is this agent's hold on its control socket path: an flock on
// SOCKET.lock for the agent's lifetime, so two agents starting at once
// cannot both decide the socket is stale. The lock file stays behind
// (like /run/xtables.lock): removing it would reopen that race.
type socketClaim struct {
	path    string
	lock    *os.File
	created bool // the socket file is ours: release removes it
}

// claimSocket creates the socket's directory, takes the lock, and removes
// a stale socket file. It refuses when another agent holds the lock or
// answers on the socket, and never removes anything that is not a socket.
func claimSocket(path string) (*socketClaim, error) {
	if path == "" {
		return nil, errors.New("control.socket: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	lf, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("control socket lock: %w", err)
	}
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lf.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w on %s", ErrAlreadyRunning, path)
		}
		return nil, fmt.Errorf("control socket lock %s: %w", lf.Name(), err)
	}
	c := &socketClaim{path: path, lock: lf}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, nil
	case err != nil:
		c.release()
		return nil, fmt.Errorf("control socket: %w", err)
	case fi.Mode().Type() != fs.ModeSocket:
		c.release()
		return nil, fmt.Errorf("control socket %s exists and is not a socket; remove it or set control.socket", path)
	}
	// An agent without our lock (an older build, another mount namespace
	// view of /run) may still be listening: ask before removing.
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		c.release()
		return nil, fmt.Errorf("%w on %s", ErrAlreadyRunning, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.release()
		return nil, fmt.Errorf("removing stale control socket: %w", err)
	}
	return c, nil
}

// release removes the socket if this agent created it, and drops the lock.
func (c *socketClaim) release() error {
	var err error
	if c.created {
		if rerr := os.Remove(c.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = fmt.Errorf("removing control socket: %w", rerr)
		}
		c.created = false
	}
	if c.lock != nil {
		c.lock.Close() // closing the only fd drops the flock
		c.lock = nil
	}
	return err
}

// lookupGroup resolves control.group, a name or a numeric GID; "" is -1,
// "leave the group alone".
func lookupGroup(name string) (int, error) {
	if name == "" {
		return -1, nil
	}
	if gid, err := strconv.Atoi(name); err == nil && gid >= 0 {
		return gid, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, fmt.Errorf("control.group: %w", err)
	}
	return strconv.Atoi(g.Gid)
}
