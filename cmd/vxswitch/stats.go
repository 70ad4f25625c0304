package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vxswitch/vxswitch/control"
	"github.com/vxswitch/vxswitch/dataplane"
)

type statsFlags struct{ json bool }

func newStatsCmd(a *app) *cobra.Command {
	f := &statsFlags{}
	cmd := &cobra.Command{
		Use:   "stats [--json]",
		Short: "Show per-port and tunnel counters, drops by reason, and FDB counters",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := a.client().Stats(cmd.Context())
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(a.stdout, r)
			}
			return printStats(a.stdout, r)
		},
	}
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON, as the control API returns it")
	return cmd
}

func printStats(w io.Writer, r control.StatsReply) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, " Port\tRX packets\tRX bytes\tTX packets\tTX bytes\tMACs\tDrops")
	row := func(name string, c dataplane.PortCounters, macs string) {
		fmt.Fprintf(tw, " %s\t%d\t%d\t%d\t%d\t%s\t%s\n", name, c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes, macs, drops(c.Drops))
	}
	for _, p := range r.Ports {
		row(p.Name, p.PortCounters, fmt.Sprint(p.FDB.Entries))
	}
	if r.Tunnel != nil {
		row(dataplane.TunnelName, *r.Tunnel, "-")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := r.FDB
	_, err := fmt.Fprintf(w, "FDB %d of %d entries (%d static); learned %d, moves %d, evictions %d, aged %d, refused %d\n",
		s.Entries, s.Capacity, s.Static, s.Learned, s.Moves, s.Evictions, s.Aged, s.Refused)
	return err
}

// drops lists the non-zero drop counters as reason=count, or "0".
func drops(m map[string]uint64) string {
	var out []string
	for _, reason := range slices.Sorted(maps.Keys(m)) {
		if m[reason] != 0 {
			out = append(out, fmt.Sprintf("%s=%d", reason, m[reason]))
		}
	}
	if len(out) == 0 {
		return "0"
	}
	return strings.Join(out, " ")
}
