package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/vxswitch/vxswitch/control"
)

type portAddFlags struct {
	typ       string
	tag       vlanValue
	trunks    string
	vlanMode  string
	netns     string
	addresses []string
	mtu       int
	macLimit  int
	mac       string
}

func newPortCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "port",
		Short: "Add and remove ports at run time",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(newPortAddCmd(a), newPortDelCmd(a))
	return cmd
}

func newPortAddCmd(a *app) *cobra.Command {
	f := &portAddFlags{}
	cmd := &cobra.Command{
		Use:   "add NAME --type system|internal [--tag N] [--trunks LIST] [--vlan-mode M] [--netns PATH] [--address CIDR]... [--mac MAC]",
		Short: "Add a port: a TAP the switch creates (internal) or an existing interface (system)",
		Args:  oneArg("NAME"),
		RunE:  func(cmd *cobra.Command, args []string) error { return a.runPortAdd(cmd, args[0], f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.typ, "type", "", "port type: `internal` (a TAP the switch creates) or system (an existing interface)")
	fl.Var(&f.tag, "tag", "access VLAN `N` (with --trunks: the native VLAN)")
	fl.StringVar(&f.trunks, "trunks", "", "VLANs a trunk carries, such as `7,220-221` (default all)")
	fl.StringVar(&f.vlanMode, "vlan-mode", "", "`MODE`: access, trunk, native-untagged or native-tagged (default inferred)")
	fl.StringVar(&f.netns, "netns", "", "move an internal port's interface into network namespace `PATH` (or name)")
	fl.StringArrayVar(&f.addresses, "address", nil, "`CIDR` address for an internal port's interface (repeatable)")
	fl.IntVar(&f.mtu, "mtu", 0, "MTU `N` (default: the bridge's mtu for internal ports)")
	fl.IntVar(&f.macLimit, "mac-limit", 0, "at most `N` learned MACs on this port (0: no limit)")
	fl.StringVar(&f.mac, "mac", "", "Ethernet address `MAC` of an internal port's interface (default: random)")
	return cmd
}

func (a *app) runPortAdd(cmd *cobra.Command, name string, f *portAddFlags) error {
	if f.typ == "" {
		return usagef(cmd, "port add: --type system|internal is required")
	}
	req := control.PortAddRequest{
		Name: name, Type: f.typ, Tag: f.tag.ptr(), Trunks: f.trunks, VLANMode: f.vlanMode,
		NetNS: f.netns, Addresses: f.addresses, MTU: f.mtu, MACLimit: f.macLimit, MAC: f.mac,
	}
	// The agent checks again; checking here makes bad usage exit 2 with
	// a hint even when the agent is not running.
	if _, err := req.PortConfig(); err != nil {
		var ae *control.APIError
		if errors.As(err, &ae) {
			return usagef(cmd, "port add: %s", ae.Message)
		}
		return err
	}
	return a.client().PortAdd(cmd.Context(), req)
}

func newPortDelCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "del NAME",
		Short: "Remove a port (an internal port's TAP is deleted)",
		Args:  oneArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.client().PortDel(cmd.Context(), args[0])
		},
	}
}
