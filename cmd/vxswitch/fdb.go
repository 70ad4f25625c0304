package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vxswitch/vxswitch/control"
	"github.com/vxswitch/vxswitch/fdb"
)

// fdbFlags are the flags of the fdb subcommands; each uses a subset.
type fdbFlags struct {
	vlan vlanValue
	port string
	json bool
}

func newFDBCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fdb",
		Short: "Show and change the forwarding database (MAC table)",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(newFDBShowCmd(a), newFDBFlushCmd(a), newFDBAddCmd(a), newFDBDelCmd(a))
	return cmd
}

func newFDBShowCmd(a *app) *cobra.Command {
	f := &fdbFlags{}
	cmd := &cobra.Command{
		Use:   "show [--vlan N] [--port P] [--json]",
		Short: "List FDB entries: port, VLAN, MAC, age (and the VTEP behind the tunnel)",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return a.runFDBShow(cmd, f) },
	}
	cmd.Flags().Var(&f.vlan, "vlan", "only entries in VLAN `N`")
	cmd.Flags().StringVar(&f.port, "port", "", "only entries on port `P` (vxlan: behind the tunnel)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON: a list of {port, vlan, mac, age, static, remote}")
	return cmd
}

func (a *app) runFDBShow(cmd *cobra.Command, f *fdbFlags) error {
	entries, err := a.client().FDB(cmd.Context(), control.FDBQuery{VLAN: f.vlan.ptr(), Port: f.port})
	if err != nil {
		return err
	}
	if f.json {
		if entries == nil {
			entries = []control.FDBEntry{}
		}
		return printJSON(a.stdout, entries)
	}
	return printFDB(a.stdout, entries)
}

// printFDB prints Open vSwitch's fdb/show columns with port names:
//
//	port      VLAN  MAC                Age
//	c0           7  00:16:3e:2d:4f:16    1
//	vxlan        7  3a:98:95:a9:6b:44    3  172.16.221.2
//
// The port column widens for long names; the rest is fixed width, and a
// static entry's age reads "static", as in Open vSwitch.
func printFDB(w io.Writer, entries []control.FDBEntry) error {
	tw := tabwriter.NewWriter(w, 11, 0, 2, ' ', 0)
	fmt.Fprint(tw, " port\tVLAN  MAC                Age\n")
	for _, e := range entries {
		age := strconv.FormatInt(e.Age, 10)
		if e.Static {
			age = "static"
		}
		line := fmt.Sprintf(" %s\t%4d  %s  %3s", e.Port, e.VLAN, e.MAC, age)
		if e.Remote != "" {
			line += "  " + e.Remote
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

func newFDBFlushCmd(a *app) *cobra.Command {
	f := &fdbFlags{}
	cmd := &cobra.Command{
		Use:   "flush [--vlan N] [--port P]",
		Short: "Remove learned entries (all, or in one VLAN and/or on one port)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := a.client().FDBFlush(cmd.Context(), control.FDBFlushRequest{VLAN: f.vlan.ptr(), Port: f.port})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "flushed %d %s\n", r.Flushed, plural(r.Flushed, "entry", "entries"))
			return nil
		},
	}
	cmd.Flags().Var(&f.vlan, "vlan", "only entries in VLAN `N`")
	cmd.Flags().StringVar(&f.port, "port", "", "only entries on port `P`")
	return cmd
}

func newFDBAddCmd(a *app) *cobra.Command {
	f := &fdbFlags{}
	cmd := &cobra.Command{
		Use:   "add MAC --vlan N --port P",
		Short: "Add a static entry: MAC in VLAN N always goes to port P",
		Args:  oneArg("MAC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			mac, err := parseMAC(cmd, args[0])
			if err != nil {
				return err
			}
			if !f.vlan.set || f.port == "" {
				return usagef(cmd, "fdb add: --vlan N and --port P are required")
			}
			return a.client().FDBAdd(cmd.Context(), control.FDBAddRequest{MAC: mac.String(), VLAN: f.vlan.v, Port: f.port})
		},
	}
	cmd.Flags().Var(&f.vlan, "vlan", "VLAN `N` (required)")
	cmd.Flags().StringVar(&f.port, "port", "", "port `P` (required)")
	return cmd
}

func newFDBDelCmd(a *app) *cobra.Command {
	f := &fdbFlags{}
	cmd := &cobra.Command{
		Use:   "del MAC --vlan N",
		Short: "Remove the entry for MAC in VLAN N, static or learned",
		Args:  oneArg("MAC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			mac, err := parseMAC(cmd, args[0])
			if err != nil {
				return err
			}
			if !f.vlan.set {
				return usagef(cmd, "fdb del: --vlan N is required")
			}
			return a.client().FDBDel(cmd.Context(), control.FDBDelRequest{MAC: mac.String(), VLAN: f.vlan.v})
		},
	}
	cmd.Flags().Var(&f.vlan, "vlan", "VLAN `N` (required)")
	return cmd
}

func parseMAC(cmd *cobra.Command, s string) (fdb.MAC, error) {
	mac, err := fdb.ParseMAC(s)
	if err != nil {
		return mac, usagef(cmd, "bad MAC %q: want six bytes such as 00:16:3e:2d:4f:16", s)
	}
	if mac.IsMulticast() {
		return mac, usagef(cmd, "%s is a multicast MAC: such frames are always flooded, so an entry would never be used", mac)
	}
	return mac, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
