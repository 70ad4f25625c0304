package main

import (
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/vxswitch/vxswitch/control"
)

// socketEnv names the control socket when --socket is not given.
const socketEnv = "VXSWITCH_SOCKET"

// app holds what every command shares: the output streams and the global
// --socket flag.
type app struct {
	stdout, stderr io.Writer
	socketFlag     string
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "vxswitch",
		Short: "vxswitch is a userspace VXLAN overlay switch",
		Long: "vxswitch is a userspace VXLAN overlay switch: a learning Ethernet switch with\n" +
			"TAP and AF_PACKET ports, carrying VLANs between hosts in VXLAN.\n\n" +
			"`vxswitch agent --config FILE` runs the switch; the other commands talk to it\n" +
			"over its control socket (--socket, else $" + socketEnv + ", else " + control.DefaultSocket + ").",
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		Args:              cobra.ArbitraryArgs,
		RunE:              groupRun,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{cmd: c.CommandPath(), msg: err.Error()}
	})
	root.PersistentFlags().StringVar(&a.socketFlag, "socket", "",
		"control socket `PATH` (default $"+socketEnv+", else "+control.DefaultSocket+")")
	root.AddCommand(
		newAgentCmd(a),
		newShowCmd(a),
		newFDBCmd(a),
		newPortCmd(a),
		newMembersCmd(a),
		newStatsCmd(a),
		newVersionCmd(a),
	)
	return root
}

// groupRun runs a command that only groups subcommands: bare, it prints
// its usage; with an unknown subcommand, that is bad usage.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef(cmd, "unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return &usageError{msg: "missing command", usage: cmd.UsageString()}
}

// socketPath is --socket, else $VXSWITCH_SOCKET, else the default.
func (a *app) socketPath() string {
	if a.socketFlag != "" {
		return a.socketFlag
	}
	if s := os.Getenv(socketEnv); s != "" {
		return s
	}
	return control.DefaultSocket
}

func (a *app) client() *control.Client { return control.NewClient(a.socketPath()) }
