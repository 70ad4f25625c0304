package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"

	"github.com/vxswitch/vxswitch/dataplane"
)

// maxRequestBody bounds a request body; the largest real one, a port with
// a few addresses, is well under a kilobyte.
const maxRequestBody = 64 << 10

// NewHandler serves the control API (see api.go) from b, and Go's
// profiling endpoints under /debug/pprof/ (registerPprof). Each API
// request is logged at debug level; internal errors at warn.
func NewHandler(b Backend, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{b: b, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/show", h.show)
	mux.HandleFunc("GET /v1/fdb", h.fdbShow)
	mux.HandleFunc("POST /v1/fdb", h.fdbAdd)
	mux.HandleFunc("DELETE /v1/fdb/{vlan}/{mac}", h.fdbDel)
	mux.HandleFunc("POST /v1/fdb/flush", h.fdbFlush)
	mux.HandleFunc("POST /v1/ports", h.portAdd)
	mux.HandleFunc("DELETE /v1/ports/{name}", h.portDel)
	mux.HandleFunc("GET /v1/members", h.members)
	mux.HandleFunc("GET /v1/stats", h.stats)
	registerPprof(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, Errorf(CodeNotFound, "no API endpoint %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// registerPprof puts net/http/pprof's handlers on mux under
// /debug/pprof/: the index and the named profiles (heap, goroutine,
// allocs, block, mutex, threadcreate) through Index, a CPU profile
// (profile?seconds=N), an execution trace (trace?seconds=N), cmdline and
// symbol. They are registered here, explicitly: the package's own init
// puts them on http.DefaultServeMux, which the agent never serves. The
// control socket is root's (mode 0660), so profiles are as private as the
// rest of the API; nothing is exposed on the metrics listener.
func registerPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

type handler struct {
	b   Backend
	log *slog.Logger
}

func (h *handler) show(w http.ResponseWriter, r *http.Request) {
	reply, err := h.b.Show(r.Context())
	h.reply(w, r, reply, err)
}

func (h *handler) fdbShow(w http.ResponseWriter, r *http.Request) {
	var q FDBQuery
	if s := r.URL.Query().Get("vlan"); s != "" {
		v, err := parseVLANParam(s)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		q.VLAN = &v
	}
	q.Port = r.URL.Query().Get("port")
	entries, err := h.b.FDB(r.Context(), q)
	if entries == nil {
		entries = []FDBEntry{} // [] rather than null for scripts
	}
	h.reply(w, r, entries, err)
}

func (h *handler) fdbAdd(w http.ResponseWriter, r *http.Request) {
	var req FDBAddRequest
	if h.decode(w, r, &req) {
		h.reply(w, r, nil, h.b.FDBAdd(r.Context(), req))
	}
}

func (h *handler) fdbDel(w http.ResponseWriter, r *http.Request) {
	vlan, err := parseVLANParam(r.PathValue("vlan"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.reply(w, r, nil, h.b.FDBDel(r.Context(), FDBDelRequest{MAC: r.PathValue("mac"), VLAN: vlan}))
}

func (h *handler) fdbFlush(w http.ResponseWriter, r *http.Request) {
	var req FDBFlushRequest
	if h.decode(w, r, &req) {
		reply, err := h.b.FDBFlush(r.Context(), req)
		h.reply(w, r, reply, err)
	}
}

func (h *handler) portAdd(w http.ResponseWriter, r *http.Request) {
	var req PortAddRequest
	if h.decode(w, r, &req) {
		h.reply(w, r, nil, h.b.PortAdd(r.Context(), req))
	}
}

func (h *handler) portDel(w http.ResponseWriter, r *http.Request) {
	h.reply(w, r, nil, h.b.PortDel(r.Context(), r.PathValue("name")))
}

func (h *handler) members(w http.ResponseWriter, r *http.Request) {
	m, err := h.b.Members(r.Context())
	if m == nil {
		m = []MemberInfo{}
	}
	h.reply(w, r, m, err)
}

func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	reply, err := h.b.Stats(r.Context())
	h.reply(w, r, reply, err)
}

func parseVLANParam(s string) (uint16, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || v > dataplane.MaxVLAN {
		return 0, Errorf(CodeBadRequest, "VLAN %q: want a number 0-%d", s, dataplane.MaxVLAN)
	}
	return uint16(v), nil
}

// decode reads a JSON body strictly; on failure it has answered already.
func (h *handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		h.fail(w, r, Errorf(CodeBadRequest, "bad request body: %v", err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		h.fail(w, r, Errorf(CodeBadRequest, "bad request body: trailing data"))
		return false
	}
	return true
}

// reply writes v as JSON, or err as an error; v nil means 204 No Content.
func (h *handler) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Debug("api", "method", r.Method, "path", r.URL.Path)
	if v == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		ae = &APIError{Code: CodeInternal, Message: err.Error()}
	}
	level := slog.LevelDebug
	if ae.Code == CodeInternal {
		level = slog.LevelWarn
	}
	h.log.Log(r.Context(), level, "api error", "method", r.Method, "path", r.URL.Path, "code", ae.Code, "err", ae.Message)
	writeJSON(w, statusOf(ae.Code), ae)
}

func statusOf(c ErrorCode) int {
	switch c {
	case CodeNotFound:
		return http.StatusNotFound
	case CodeBadRequest:
		return http.StatusBadRequest
	case CodeConflict:
		return http.StatusConflict
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client has gone; nothing to do
}

// ListenSocket creates the control socket at path with mode 0660, owned by
// group gid (or left as created when gid < 0). The socket is bound under
// a temporary name, given its mode and group, then renamed into place, so
// no client can ever connect while its permissions are looser. The
// directory must exist. Closing the listener does not remove path.
func ListenSocket(path string, gid int) (*net.UnixListener, error) {
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".vxswitch-%d.sock", os.Getpid()))
	direct := len(tmp) > 107 // sun_path: fall back to chmod after bind
	if direct {
		tmp = path
	}
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o660); err != nil {
		return fail(err)
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fail(err)
		}
	}
	if !direct {
		if err := os.Rename(tmp, path); err != nil {
			return fail(err)
		}
	}
	return ln, nil
}
