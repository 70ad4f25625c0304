package measure

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
)

// A PingResult is one ping run; times in microseconds.
type PingResult struct {
	P50, P99 float64
	Sent     int
	Received int
}

// Ping sends count pings at interval from src to dst and returns the
// median and 99th percentile of the round-trip times. Two pings before
// fill ARP and the FDBs. More than 1 % lost is an error.
func Ping(l *lab.Lab, src, dst *lab.Container, count int, interval time.Duration) (PingResult, error) {
	r := PingResult{Sent: count}
	if _, err := src.Ping(dst.Addr4.Addr(), 2); err != nil {
		return r, fmt.Errorf("priming ping %s -> %s: %w", src, dst, err)
	}
	limit := time.Duration(count)*interval + 15*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out, err := l.ExecContext(ctx, src.NS, "ping", "-n", "-c", strconv.Itoa(count),
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), "-W", "1", dst.Addr4.Addr().String())
	r.setRTTs(ParseRTTs(out))
	if lost := count - r.Received; lost*100 > count {
		return r, fmt.Errorf("ping %s -> %s: %d of %d lost (%v)", src, dst, lost, count, err)
	}
	return r, nil
}

// setRTTs sets Received, P50 and P99 from the round trips of the replies.
func (r *PingResult) setRTTs(rtts []float64) {
	r.Received = len(rtts)
	r.P50 = Percentile(rtts, 50)
	r.P99 = Percentile(rtts, 99)
}

var rttRE = regexp.MustCompile(`time[=<]([0-9.]+) ms`)

// ParseRTTs returns the per-packet round-trip times in ping's output, in
// microseconds.
func ParseRTTs(out string) []float64 {
	var us []float64
	for _, m := range rttRE.FindAllStringSubmatch(out, -1) {
		if ms, err := strconv.ParseFloat(m[1], 64); err == nil {
			us = append(us, ms*1000)
		}
	}
	return us
}
