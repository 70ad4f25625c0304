package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vxswitch/vxswitch/control"
)

type membersFlags struct{ json bool }

func newMembersCmd(a *app) *cobra.Command {
	f := &membersFlags{}
	cmd := &cobra.Command{
		Use:   "members [--json]",
		Short: "List gossip members: name, VTEP address, state, VNIs",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := a.client().Members(cmd.Context())
			if err != nil {
				return err
			}
			if f.json {
				if m == nil {
					m = []control.MemberInfo{}
				}
				return printJSON(a.stdout, m)
			}
			return printMembers(a.stdout, m)
		},
	}
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON: a list of {name, address, state, vnis}")
	return cmd
}

// printMembers prints the members as `serf members` does, with a header.
func printMembers(w io.Writer, members []control.MemberInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Name\tAddress\tStatus\tVNIs")
	for _, m := range members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, m.Address, m.State, joinUints(m.VNIs))
	}
	return tw.Flush()
}
