package measure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
)

// iperfPort is the iperf3 server's TCP port.
const iperfPort = "5201"

// A TCPResult is one iperf3 run.
type TCPResult struct {
	Gbps        float64 // received, in Gbit/s
	Retransmits int
	// Stalled is set when no data got through in time: Gbps is 0 and
	// Note says what happened (Open vSwitch's userspace datapath does
	// this with default offloads, see FACTS.md).
	Stalled bool
	Note    string
	// CC is the sender's TCP congestion control, as iperf3 reports it
	// (the client namespace's default unless TCP was given one).
	CC string
}

// TCP runs one iperf3 test of dur from client to an iperf3 server in the
// server container and returns the received rate. The client is bounded
// twice: iperf3's own --snd-timeout, and a hard kill at dur+20 s. A run
// that moves no data returns Stalled with Gbps 0 and no error; an error
// is for a run that could not be made at all. cc, when not empty, is the
// client's congestion control (iperf3 -C); otherwise the namespace's
// default (net.ipv4.tcp_congestion_control) is used.
func TCP(l *lab.Lab, client, server *lab.Container, dur time.Duration, cc string) (TCPResult, error) {
	var r TCPResult
	addr := server.Addr4.Addr().String()
	srv, err := l.Start(server.NS, "iperf3", "-s", "-1", "-B", addr, "-p", iperfPort)
	if err != nil {
		return r, err
	}
	defer srv.Stop()
	if err := l.WaitFor(func() error {
		if err := srv.Alive(); err != nil {
			return err
		}
		out, err := l.Exec(server.NS, "ss", "-Hltn", "sport = :"+iperfPort)
		if err == nil && !strings.Contains(out, iperfPort) {
			err = errors.New("iperf3 server not listening yet")
		}
		return err
	}, 10*time.Second); err != nil {
		return r, err
	}
	limit := dur + 20*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	secs := fmt.Sprint(int(dur.Round(time.Second).Seconds()))
	args := []string{"iperf3", "-c", addr, "-p", iperfPort, "-t", secs, "-J",
		"--connect-timeout", "5000", "--snd-timeout", "5000"}
	if cc != "" {
		args = append(args, "-C", cc)
	}
	out, err := l.ExecContext(ctx, client.NS, args...)
	if ctx.Err() != nil {
		r.Stalled = true
		r.Note = fmt.Sprintf("iperf3 made no progress and was killed after %v", limit)
		return r, nil
	}
	res, perr := parseIperf(out)
	switch {
	case perr != nil && err != nil:
		return r, err
	case perr != nil:
		return r, fmt.Errorf("iperf3 output: %w", perr)
	case res.Error == "":
		r.Gbps = res.End.SumReceived.BitsPerSecond / 1e9
		r.Retransmits = res.End.SumSent.Retransmits
		r.CC = res.End.SenderCC
		if r.Gbps == 0 {
			r.Stalled = true
			r.Note = "iperf3 finished but received nothing"
		}
		return r, nil
	case strings.Contains(res.Error, "refused") || strings.Contains(res.Error, "unreachable"):
		// Nothing listens, or no route: the lab is broken, not slow.
		return r, fmt.Errorf("iperf3: %s", res.Error)
	default:
		// Timed out: the switch passes ping but loses TCP (Open vSwitch's
		// userspace datapath drops segments whose checksum the veth left
		// to offload, so even the handshake times out).
		r.Stalled = true
		r.Note = "iperf3: " + res.Error
		return r, nil
	}
}

type iperfJSON struct {
	Error string `json:"error"`
	End   struct {
		SumSent struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
			Retransmits   int     `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
		SenderCC string `json:"sender_tcp_congestion"`
	} `json:"end"`
}

func parseIperf(out string) (iperfJSON, error) {
	var r iperfJSON
	// iperf3 -J prints one JSON object; anything before it is noise.
	if i := strings.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	err := json.Unmarshal([]byte(out), &r)
	return r, err
}
