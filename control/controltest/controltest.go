// Package controltest provides a fake control.Backend and a helper that
// serves it on a real unix socket, for tests of the control API, its
// client and the CLI. It must not be imported by non-test code.
package controltest

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/vxswitch/vxswitch/control"
)

// Call is one Backend call as the fake saw it.
type Call struct {
	Method string
	Arg    any // the request, query or name; nil for calls without one
}

// Fake is a control.Backend that answers from its fields and records every
// call. Set the fields before serving; Errs[method] makes that method fail.
type Fake struct {
	ShowReply  control.ShowReply
	Entries    []control.FDBEntry // FDB filters these by VLAN and port
	MemberList []control.MemberInfo
	StatsReply control.StatsReply
	Flushed    int
	Errs       map[string]error // by method name: "FDBAdd", "PortDel", ...

	mu    sync.Mutex
	calls []Call
}

var _ control.Backend = (*Fake)(nil)

// Calls returns the calls so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *Fake) record(method string, arg any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Method: method, Arg: arg})
	return f.Errs[method]
}

func (f *Fake) Show(context.Context) (control.ShowReply, error) {
	return f.ShowReply, f.record("Show", nil)
}

func (f *Fake) FDB(_ context.Context, q control.FDBQuery) ([]control.FDBEntry, error) {
	if err := f.record("FDB", q); err != nil {
		return nil, err
	}
	var out []control.FDBEntry
	for _, e := range f.Entries {
		if (q.VLAN == nil || e.VLAN == *q.VLAN) && (q.Port == "" || e.Port == q.Port) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *Fake) FDBAdd(_ context.Context, r control.FDBAddRequest) error {
	return f.record("FDBAdd", r)
}

func (f *Fake) FDBDel(_ context.Context, r control.FDBDelRequest) error {
	return f.record("FDBDel", r)
}

func (f *Fake) FDBFlush(_ context.Context, r control.FDBFlushRequest) (control.FlushReply, error) {
	return control.FlushReply{Flushed: f.Flushed}, f.record("FDBFlush", r)
}

func (f *Fake) PortAdd(_ context.Context, r control.PortAddRequest) error {
	return f.record("PortAdd", r)
}

func (f *Fake) PortDel(_ context.Context, name string) error {
	return f.record("PortDel", name)
}

func (f *Fake) Members(context.Context) ([]control.MemberInfo, error) {
	return f.MemberList, f.record("Members", nil)
}

func (f *Fake) Stats(context.Context) (control.StatsReply, error) {
	return f.StatsReply, f.record("Stats", nil)
}

// Serve serves b's control API on a fresh unix socket in a temporary
// directory, the way the agent does, until the test ends. It returns the
// socket's path.
func Serve(t testing.TB, b control.Backend) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vxswitch.sock")
	ln, err := control.ListenSocket(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: control.NewHandler(b, nil)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return path
}
