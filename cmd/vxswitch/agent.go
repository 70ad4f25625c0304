package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vxswitch/vxswitch/control"
	"github.com/vxswitch/vxswitch/dataplane"
)

type agentFlags struct {
	config   string
	logLevel string
}

func newAgentCmd(a *app) *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{
		Use:   "agent --config FILE",
		Short: "Run the switch in the foreground",
		Long: "Run the switch in the foreground until SIGINT or SIGTERM.\n\n" +
			"--socket, else $" + socketEnv + ", overrides control.socket of the config file.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runAgent(cmd, f) },
	}
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "configuration `FILE` (YAML)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	return cmd
}

func (a *app) runAgent(cmd *cobra.Command, f *agentFlags) error {
	if f.config == "" {
		return usagef(cmd, "agent: --config FILE is required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usagef(cmd, "agent: --log-level %q: want debug, info, warn or error", f.logLevel)
	}
	cfg, err := control.Load(f.config)
	if err != nil {
		return err
	}
	if a.socketFlag != "" || os.Getenv(socketEnv) != "" {
		cfg.Control.Socket = a.socketPath()
	}
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	// Pin before the switch starts its readers, so that every thread the
	// runtime makes for them inherits the CPUs.
	if len(cfg.CPUs) > 0 {
		if err := control.PinCPUs(cfg.CPUs); err != nil {
			return err
		}
	}

	// Go code runs on as many CPUs as the config asks for (control.Procs),
	// unless the environment says otherwise, as Go programs let it; set
	// before the switch starts, so that it never runs with more.
	procs := 0 // 0: the environment's GOMAXPROCS
	if os.Getenv("GOMAXPROCS") == "" {
		procs = control.Procs(cfg, runtime.GOMAXPROCS(0))
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ag, err := control.Start(cfg, log)
	if err != nil {
		return err
	}
	if procs > 0 {
		cpus := control.FormatCPUList(cfg.CPUs)
		if cpus == "" {
			cpus = "all"
		}
		log.Info("scheduler", "gomaxprocs", procs, "cpus", cpus)
	}
	if err := dataplane.BatchIOError(); err != nil {
		log.Warn("internal ports read and write frame by frame: io_uring is not available", "err", err)
	}
	<-ctx.Done()
	stop() // a second signal now kills at once, as without a handler
	log.Info("stopping", "reason", context.Cause(ctx))
	return ag.Close()
}
