package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vxswitch/vxswitch/control"
)

// usageError is bad usage: an unknown flag or command, a missing or
// malformed argument. It exits 2.
type usageError struct {
	cmd   string // command path for the "--help" hint; "" for none
	msg   string
	usage string // printed instead of the hint: a bare group command shows its subcommands
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd: cmd.CommandPath(), msg: fmt.Sprintf(format, args...)}
}

// exitCode maps an error to the exit status: 2 for bad usage (including a
// request the agent rejected as malformed), 1 for everything else.
func exitCode(err error) int {
	var ue *usageError
	var ae *control.APIError
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &ae) && ae.Code == control.CodeBadRequest:
		return 2
	}
	return 1
}

// printError writes err to w, each line prefixed "vxswitch: " (a config
// file with several problems gives one line each), then a hint for bad
// usage.
func printError(w io.Writer, err error) {
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(w, "vxswitch: %s\n", line)
	}
	var ue *usageError
	switch {
	case !errors.As(err, &ue):
	case ue.usage != "":
		fmt.Fprint(w, ue.usage)
	case ue.cmd != "":
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", ue.cmd)
	}
}

// Positional-argument checks that report bad usage.

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef(cmd, "%s: unexpected argument %q", cmd.CommandPath(), args[0])
	}
	return nil
}

func oneArg(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return usagef(cmd, "%s: missing %s", cmd.CommandPath(), what)
		case len(args) > 1:
			return usagef(cmd, "%s: unexpected argument %q after %s", cmd.CommandPath(), args[1], what)
		}
		return nil
	}
}
