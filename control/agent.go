package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vxswitch/vxswitch/control/gossip"
	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/fdb"
	"github.com/vxswitch/vxswitch/overlay"
)

// Agent is one running switch: its FDB, its ports, the control API on the
// unix socket and, if configured, the metrics endpoint. Start builds it
// completely or not at all; Close takes it down.
type Agent struct {
	cfg *Config
	log *slog.Logger

	fdb  *fdb.Table
	sw   *dataplane.Switch
	sock *socketClaim

	api         *http.Server
	metrics     *http.Server
	metricsAddr net.Addr // where metrics listens; nil when off

	stopAge chan struct{}
	wg      sync.WaitGroup // ageLoop and the HTTP servers' Serve

	// The tunnel and gossip, set by startTunnel and startGossip before
	// the API starts and not changed after. Nil without them.
	tunnel  *overlay.Endpoint
	gossip  *gossip.Gossip
	members func() []MemberInfo
	vteps   func() []VTEPInfo

	started   bool // Start completed; Close then logs the stop
	closeOnce sync.Once
	closeErr  error
}

// startOptions are test seams; the zero value is what Start uses.
type startOptions struct {
	// open replaces the device layer (dataplane.Config.Open).
	open func(dataplane.PortConfig) (dataplane.Port, error)
}

// Start runs the switch that cfg describes, in this order: claim the
// control socket (refusing if another agent answers on it, removing a
// stale socket file), create the FDB and the switch, add every port,
// attach the tunnel and gossip, then serve the control API and metrics and
// start ageing. If any step fails, everything done so far is undone (TAPs
// removed, socket removed) and the error names what failed.
func Start(cfg *Config, log *slog.Logger) (*Agent, error) {
	return start(cfg, log, startOptions{})
}

func start(cfg *Config, log *slog.Logger, opts startOptions) (a *Agent, err error) {
	if cfg == nil {
		return nil, errors.New("agent: no configuration")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	gid, err := lookupGroup(cfg.Control.Group)
	if err != nil {
		return nil, err
	}
	claim, err := claimSocket(cfg.Control.Socket)
	if err != nil {
		return nil, err
	}
	a = &Agent{cfg: cfg, log: log, sock: claim, stopAge: make(chan struct{})}
	defer func() {
		if err != nil {
			if cerr := a.Close(); cerr != nil {
				log.Warn("undoing a failed start", "err", cerr)
			}
			a = nil
		}
	}()

	a.fdb = fdb.New(fdb.Config{Size: cfg.MACTableSize, Aging: cfg.MACAging, Logger: log.With("component", "fdb")})
	a.sw = dataplane.New(dataplane.Config{Bridge: cfg.Bridge, FDB: a.fdb, Logger: log, Open: opts.open, Workers: cfg.Workers, BusyPoll: cfg.BusyPoll})
	for _, pc := range cfg.Ports {
		if err := a.addPort(pc); err != nil {
			return a, err
		}
	}
	if err := a.startTunnel(); err != nil {
		return a, err
	}
	if err := a.startGossip(); err != nil {
		return a, err
	}

	ln, err := ListenSocket(cfg.Control.Socket, gid)
	if err != nil {
		return a, err
	}
	a.sock.created = true
	a.api = &http.Server{Handler: NewHandler(a, log.With("component", "api")), ReadHeaderTimeout: 5 * time.Second}
	a.serve(a.api, ln, "control API")

	if cfg.Metrics.Listen != "" {
		mln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			return a, fmt.Errorf("metrics.listen: %w", err)
		}
		a.metricsAddr = mln.Addr()
		a.metrics = &http.Server{Handler: metricsHandler(a.statsNow), ReadHeaderTimeout: 5 * time.Second}
		a.serve(a.metrics, mln, "metrics")
	}

	a.wg.Add(1)
	go a.ageLoop(ageInterval(cfg.MACAging))
	a.started = true
	log.Info("agent started", "bridge", cfg.Bridge, "ports", len(cfg.Ports), "workers", cfg.Workers, "busy_poll", cfg.BusyPoll, "socket", cfg.Control.Socket)
	return a, nil
}

// addPort adds one port, giving an internal port the bridge's MTU unless
// it has its own. A system port keeps its device's MTU unless configured.
func (a *Agent) addPort(pc dataplane.PortConfig) error {
	if pc.MTU == 0 && pc.Type == dataplane.PortInternal {
		pc.MTU = a.cfg.MTU
	}
	if _, err := a.sw.AddPort(pc); err != nil {
		if !strings.Contains(err.Error(), strconv.Quote(pc.Name)) {
			err = fmt.Errorf("port %q: %w", pc.Name, err)
		}
		return err
	}
	return nil
}

func (a *Agent) serve(srv *http.Server, ln net.Listener, what string) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("server stopped", "server", what, "err", err)
		}
	}()
}

// ageInterval is how often learned entries are aged out: every second, or
// a tenth of the ageing time if that is shorter, but not more often than
// every 100 ms.
func ageInterval(aging time.Duration) time.Duration {
	return max(min(time.Second, aging/10), 100*time.Millisecond)
}

func (a *Agent) ageLoop(every time.Duration) {
	defer a.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-a.stopAge:
			return
		case <-t.C:
			if n := a.fdb.Age(fdb.Now()); n > 0 {
				a.log.Debug("aged out FDB entries", "count", n)
			}
		}
	}
}

// Close stops the agent, in this order:
//
//  1. stop the control API and metrics from accepting; requests in flight
//     get up to half a second to finish;
//  2. leave gossip, so peers stop sending to us before the tunnel closes;
//  3. stop ageing;
//  4. close the switch: every port stops and closes, TAPs are removed, the
//     tunnel closes;
//  5. remove the control socket and release its lock.
//
// Close is idempotent and safe on an agent whose Start failed half way.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		var errs []error
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		for _, srv := range []*http.Server{a.api, a.metrics} {
			if srv != nil {
				if err := srv.Shutdown(ctx); err != nil {
					srv.Close() // deadline passed: cut the stragglers off
				}
			}
		}
		cancel()
		errs = append(errs, a.stopGossip())
		close(a.stopAge)
		if a.sw != nil {
			errs = append(errs, a.sw.Close())
		}
		a.wg.Wait()
		if a.sock != nil {
			errs = append(errs, a.sock.release())
		}
		a.closeErr = errors.Join(errs...)
		if a.started {
			a.log.Info("agent stopped")
		}
	})
	return a.closeErr
}

// MetricsAddr is the address /metrics is served on, nil when it is off.
// It differs from metrics.listen when that asks for port 0.
func (a *Agent) MetricsAddr() net.Addr { return a.metricsAddr }

// Socket is the path of the control socket.
func (a *Agent) Socket() string { return a.cfg.Control.Socket }
