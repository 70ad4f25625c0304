// Command vxswitch is the vxswitch agent and its command-line client: one
// binary, `vxswitch agent --config FILE` runs the switch, every other
// subcommand talks to a running agent over its control socket.
//
// Exit status: 0 on success, 1 on an error the message explains (agent not
// running, no such port), 2 on bad usage.
package main

import (
	"context"
	"io"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	printError(stderr, err)
	return exitCode(err)
}
