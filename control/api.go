package control

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/fdb"
)

// The control API is HTTP/JSON over the agent's unix socket. Server and
// client share the types in this file, and `vxswitch ... --json` prints
// them as they are, so their JSON keys are part of the user-facing
// contract (DESIGN.md): rename nothing, only add.
//
//	GET    /v1/show                 ShowReply
//	GET    /v1/fdb?vlan=N&port=P    []FDBEntry
//	POST   /v1/fdb                  FDBAddRequest (static entry)
//	DELETE /v1/fdb/{vlan}/{mac}
//	POST   /v1/fdb/flush            FDBFlushRequest -> FlushReply
//	POST   /v1/ports                PortAddRequest
//	DELETE /v1/ports/{name}
//	GET    /v1/members              []MemberInfo
//	GET    /v1/stats                StatsReply
//
// Errors are an *APIError as JSON: {"error": "...", "code": "not_found"}.

// A Backend answers the control API; the agent implements it over its
// switch and FDB, tests with a fake. Errors that are not an *APIError are
// reported as CodeInternal. Calls come from the HTTP server's goroutines,
// possibly several at once.
type Backend interface {
	Show(ctx context.Context) (ShowReply, error)
	FDB(ctx context.Context, q FDBQuery) ([]FDBEntry, error)
	FDBAdd(ctx context.Context, r FDBAddRequest) error
	FDBDel(ctx context.Context, r FDBDelRequest) error
	FDBFlush(ctx context.Context, r FDBFlushRequest) (FlushReply, error)
	PortAdd(ctx context.Context, r PortAddRequest) error
	PortDel(ctx context.Context, name string) error
	Members(ctx context.Context) ([]MemberInfo, error)
	Stats(ctx context.Context) (StatsReply, error)
}

// FDBEntry is one row of `fdb show`. Age is in seconds (0 for static
// entries); Remote is the VTEP behind the tunnel, empty for local ports.
type FDBEntry struct {
	Port   string `json:"port"`
	VLAN   uint16 `json:"vlan"`
	MAC    string `json:"mac"`
	Age    int64  `json:"age"`
	Static bool   `json:"static"`
	Remote string `json:"remote"`
}

// FDBQuery filters `fdb show`; the zero value selects everything.
type FDBQuery struct {
	VLAN *uint16 // nil: every VLAN
	Port string  // "": every port
}

// FDBAddRequest adds a static entry: MAC in VLAN goes to Port.
type FDBAddRequest struct {
	MAC  string `json:"mac"`
	VLAN uint16 `json:"vlan"`
	Port string `json:"port"`
}

// FDBDelRequest removes the entry for MAC in VLAN, static or learned.
type FDBDelRequest struct {
	MAC  string `json:"mac"`
	VLAN uint16 `json:"vlan"`
}

// FDBFlushRequest removes learned entries, in one VLAN and/or on one port.
type FDBFlushRequest struct {
	VLAN *uint16 `json:"vlan,omitempty"`
	Port string  `json:"port,omitempty"`
}

// FlushReply says how many entries a flush removed.
type FlushReply struct {
	Flushed int `json:"flushed"`
}

// ShowReply is `vxswitch show`: the bridge, its ports and the tunnel.
type ShowReply struct {
	Bridge  string     `json:"bridge"`
	Workers int        `json:"workers"`        // readers per port and per tunnel (workers)
	CPUs    string     `json:"cpus,omitempty"` // the agent's CPU list (cpus), empty when not pinned
	Ports   []PortInfo `json:"ports"`
	VXLAN   *VXLANInfo `json:"vxlan,omitempty"` // nil without a vxlan section
	VTEPs   []VTEPInfo `json:"vteps"`
}

// PortInfo describes one port as configured, and its state.
type PortInfo struct {
	Name     string  `json:"name"`
	Type     string  `json:"type"`      // internal | system
	VLANMode string  `json:"vlan_mode"` // access | trunk | native-untagged | native-tagged
	Tag      *uint16 `json:"tag,omitempty"`
	// Trunks lists the VLANs a trunk carries as ranges ("7,220-221"),
	// "all" when it carries every VLAN, empty for access ports.
	Trunks    string   `json:"trunks,omitempty"`
	MTU       int      `json:"mtu"`
	State     string   `json:"state"` // up | down
	NetNS     string   `json:"netns,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
}

// VXLANInfo summarises the tunnel endpoint.
type VXLANInfo struct {
	Local    string    `json:"local"`
	Port     uint16    `json:"port"`
	VNIMap   []VNIPair `json:"vni_map,omitempty"`   // VLAN -> VNI; empty: VNI = VLAN
	TrunkVNI *uint32   `json:"trunk_vni,omitempty"` // all VLANs, tagged, in one VNI
	Accept   string    `json:"accept"`              // any | members
}

// VNIPair maps one VLAN to its VNI.
type VNIPair struct {
	VLAN uint16 `json:"vlan"`
	VNI  uint32 `json:"vni"`
}

// VTEPInfo is one remote tunnel endpoint.
type VTEPInfo struct {
	Address string   `json:"address"`
	Port    uint16   `json:"port"`
	Source  string   `json:"source"` // static | gossip
	VNIs    []uint32 `json:"vnis"`
}

// MemberInfo is one gossip member, as `vxswitch members` lists it.
type MemberInfo struct {
	Name    string   `json:"name"`
	Address string   `json:"address"` // VTEP address
	State   string   `json:"state"`   // alive | failed | left (suspect: not produced with memberlist v0.7.0)
	VNIs    []uint32 `json:"vnis"`
}

// StatsReply is `vxswitch stats`: per-port and tunnel counters, and the
// FDB's.
type StatsReply struct {
	Ports  []PortStats             `json:"ports"`
	Tunnel *dataplane.PortCounters `json:"tunnel,omitempty"` // nil without a tunnel
	FDB    fdb.Stats               `json:"fdb"`
}

// PortStats are one port's counters (rx_packets ... drops, flattened) and
// its share of the FDB.
type PortStats struct {
	Name string `json:"name"`
	dataplane.PortCounters
	FDB fdb.PortStats `json:"fdb"`
}

// PortAddRequest is `vxswitch port add`; the same checks as a port in the
// config file apply (see PortConfig).
type PortAddRequest struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"` // internal | system
	Tag       *uint16  `json:"tag,omitempty"`
	Trunks    string   `json:"trunks,omitempty"` // "7,220-221"
	VLANMode  string   `json:"vlan_mode,omitempty"`
	NetNS     string   `json:"netns,omitempty"`
	Addresses []string `json:"addresses,omitempty"` // CIDR: 192.0.2.1/24
	MTU       int      `json:"mtu,omitempty"`       // 0: the bridge's mtu
	MACLimit  int      `json:"mac_limit,omitempty"`
	MAC       string   `json:"mac,omitempty"` // internal ports: the interface's Ethernet address
}

// PortConfig checks r and converts it. Every error is an *APIError with
// CodeBadRequest, so the CLI can check a request before sending it.
func (r *PortAddRequest) PortConfig() (dataplane.PortConfig, error) {
	bad := func(format string, args ...any) (dataplane.PortConfig, error) {
		return dataplane.PortConfig{}, Errorf(CodeBadRequest, format, args...)
	}
	pc := dataplane.PortConfig{Name: r.Name, Type: dataplane.PortType(r.Type), MTU: r.MTU, MACLimit: r.MACLimit}
	if err := checkPortName(r.Name); err != nil {
		return bad("%v", err)
	}
	if pc.Type != dataplane.PortInternal && pc.Type != dataplane.PortSystem {
		return bad("port type %q: want internal or system", r.Type)
	}
	if r.Tag != nil {
		if *r.Tag > dataplane.MaxVLAN {
			return bad("tag: VLAN %d out of range 0-%d", *r.Tag, dataplane.MaxVLAN)
		}
		pc.Tag, pc.HasTag = *r.Tag, true
	}
	if r.Trunks != "" {
		set, err := parseVLANList(r.Trunks)
		if err != nil {
			return bad("trunks: %v", err)
		}
		pc.Trunks = set
	}
	if r.VLANMode != "" {
		m, err := dataplane.ParseVLANMode(r.VLANMode)
		if err != nil {
			return bad("%v", err)
		}
		pc.Mode, pc.ModeSet = m, true
	}
	if r.NetNS != "" {
		ns, err := netnsPath(r.NetNS)
		if err != nil {
			return bad("netns: %v", err)
		}
		pc.NetNS = ns
	}
	for _, a := range r.Addresses {
		pfx, err := netip.ParsePrefix(a)
		if err != nil {
			return bad("bad address %q: want an address with a prefix length, such as 192.0.2.1/24", a)
		}
		pc.Addresses = append(pc.Addresses, pfx)
	}
	if r.MTU != 0 && (r.MTU < 68 || r.MTU > 65535) {
		return bad("MTU %d out of range 68-65535", r.MTU)
	}
	if r.MACLimit < 0 {
		return bad("mac-limit %d must not be negative", r.MACLimit)
	}
	if r.MAC != "" {
		mac, err := dataplane.ParseMAC(r.MAC)
		if err != nil {
			return bad("%v", err)
		}
		pc.MAC = mac
	}
	if err := pc.Normalize(); err != nil {
		return bad("%v", err)
	}
	return pc, nil
}

// ErrorCode classifies an API error; the CLI maps it to an exit status.
// Append only: clients of older versions see these strings.
type ErrorCode string

const (
	CodeNotFound    ErrorCode = "not_found"   // no such port, FDB entry or endpoint
	CodeBadRequest  ErrorCode = "bad_request" // the request is malformed or impossible
	CodeConflict    ErrorCode = "conflict"    // exists already, or a table is full
	CodeUnavailable ErrorCode = "unavailable" // the feature is not configured or not ready
	CodeInternal    ErrorCode = "internal"    // anything else: the agent failed
)

// APIError is an error with a code, as the agent sends it and the client
// returns it.
type APIError struct {
	Message string    `json:"error"`
	Code    ErrorCode `json:"code"`
}

func (e *APIError) Error() string { return e.Message }

// Errorf makes an *APIError.
func Errorf(code ErrorCode, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCodeOf returns the code of the first *APIError in err's chain, or
// CodeInternal.
func ErrorCodeOf(err error) ErrorCode {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return CodeInternal
}
