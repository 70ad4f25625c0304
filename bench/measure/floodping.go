package measure

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
)

// A FloodPingResult is one FloodPing run: the ping's round trips and the
// flood's rates.
type FloodPingResult struct {
	Ping  PingResult
	Flood PPSResult
}

// FloodPing floods dst from src with 64-byte frames as PPS does and,
// during the counted window, pings dst from namespace ns (the host's SVI)
// every interval: how long the switch makes other ports' frames wait
// while one port takes more than it can forward. ping runs at real-time
// priority (chrt -f 50) so that its own wake-ups, on CPUs busy with the
// flood, do not count. Some pings may be lost to the flood (the switch's
// queues overflow); none answered is an error.
func FloodPing(l *lab.Lab, ns string, src, dst *lab.Container, dur, interval time.Duration, probes ...Probe) (FloodPingResult, error) {
	var r FloodPingResult
	if _, err := lab.PingFrom(l, ns, dst.Addr4.Addr(), 2); err != nil {
		return r, fmt.Errorf("priming ping %s -> %s: %w", ns, dst, err)
	}
	ctx, cancel := context.WithTimeout(l.Context(), dur+30*time.Second)
	defer cancel()
	p := &pingProbe{l: l, ctx: ctx, ns: ns, dst: dst.Addr4.Addr().String(), dur: dur, interval: interval,
		out: make(chan pingOut, 1)}
	flood, err := PPS(l, src, dst, dur, append([]Probe{p}, probes...)...)
	if !p.started {
		if err == nil {
			err = fmt.Errorf("flood ping: the window never opened")
		}
		return r, err
	}
	if err != nil {
		cancel()
	}
	o := <-p.out
	if err != nil {
		return r, err
	}
	r.Flood = flood
	r.Ping.setRTTs(ParseRTTs(o.text))
	r.Ping.Sent = parseTransmitted(o.text)
	if r.Ping.Received == 0 {
		return r, fmt.Errorf("ping %s -> %s under the flood: no reply of %d (%v)", ns, dst, r.Ping.Sent, o.err)
	}
	return r, nil
}

// pingProbe starts the ping as the flood's window opens.
type pingProbe struct {
	l             *lab.Lab
	ctx           context.Context
	ns, dst       string
	dur, interval time.Duration
	started       bool
	out           chan pingOut
}

type pingOut struct {
	text string
	err  error
}

func (p *pingProbe) WindowStart() error {
	p.started = true
	go func() {
		// -w: stop at the window's end, however many were answered.
		out, err := p.l.ExecContext(p.ctx, p.ns, "chrt", "-f", "50", "ping", "-n",
			"-i", strconv.FormatFloat(p.interval.Seconds(), 'f', 3, 64),
			"-w", strconv.Itoa(max(1, int(p.dur.Round(time.Second)/time.Second))), "-W", "1", p.dst)
		p.out <- pingOut{out, err}
	}()
	return nil
}

func (p *pingProbe) WindowEnd() error { return nil }

var transmittedRE = regexp.MustCompile(`(\d+) packets transmitted`)

// parseTransmitted returns how many pings ping says it sent (0 if it
// does not say).
func parseTransmitted(out string) int {
	m := transmittedRE.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
