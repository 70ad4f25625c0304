package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vxswitch/vxswitch/control"
)

type showFlags struct{ json bool }

func newShowCmd(a *app) *cobra.Command {
	f := &showFlags{}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the bridge, its ports (type, mode, VLANs, MTU, state) and VTEPs",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return a.runShow(cmd, f) },
	}
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON, as the control API returns it")
	return cmd
}

func (a *app) runShow(cmd *cobra.Command, f *showFlags) error {
	r, err := a.client().Show(cmd.Context())
	if err != nil {
		return err
	}
	if f.json {
		return printJSON(a.stdout, r)
	}
	return printShow(a.stdout, r)
}

func printShow(w io.Writer, r control.ShowReply) error {
	fmt.Fprintf(w, "Bridge %s", r.Bridge)
	if r.Workers > 1 {
		fmt.Fprintf(w, ", %d workers", r.Workers)
	}
	if r.CPUs != "" {
		fmt.Fprintf(w, ", CPUs %s", r.CPUs)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, " Port\tType\tMode\tTag\tTrunks\tMTU\tState\tNetns")
	for _, p := range r.Ports {
		tag, trunks, netns := "-", p.Trunks, p.NetNS
		if p.Tag != nil {
			tag = fmt.Sprint(*p.Tag)
		}
		if trunks == "" {
			trunks = "-"
		}
		if netns == "" {
			netns = "-"
		}
		mtu := "-" // a system port whose MTU the switch does not set
		if p.MTU > 0 {
			mtu = fmt.Sprint(p.MTU)
		}
		fmt.Fprintf(tw, " %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Type, p.VLANMode, tag, trunks, mtu, p.State, netns)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.VXLAN == nil {
		return nil
	}
	v := r.VXLAN
	vnis := "VNI = VLAN"
	switch {
	case v.TrunkVNI != nil:
		vnis = fmt.Sprintf("trunk VNI %d (all VLANs, tagged)", *v.TrunkVNI)
	case len(v.VNIMap) > 0:
		var pairs []string
		for _, p := range v.VNIMap {
			pairs = append(pairs, fmt.Sprintf("%d->%d", p.VLAN, p.VNI))
		}
		vnis = "VLAN->VNI " + strings.Join(pairs, " ")
	}
	fmt.Fprintf(w, "VXLAN %s port %d, accept %s, %s\n", v.Local, v.Port, v.Accept, vnis)
	if len(r.VTEPs) == 0 {
		fmt.Fprintln(w, " no remote VTEPs")
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, " VTEP\tPort\tSource\tVNIs")
	for _, t := range r.VTEPs {
		fmt.Fprintf(tw, " %s\t%d\t%s\t%s\n", t.Address, t.Port, t.Source, joinUints(t.VNIs))
	}
	return tw.Flush()
}

func joinUints(vs []uint32) string {
	if len(vs) == 0 {
		return "-"
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}
