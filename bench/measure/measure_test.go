package measure

import (
	"math"
	"net"
	"slices"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want Summary
	}{
		{"odd", []float64{3, 1, 2}, Summary{Median: 2, Min: 1, Max: 3, Runs: []float64{3, 1, 2}}},
		{"even", []float64{4, 1, 2, 3}, Summary{Median: 2.5, Min: 1, Max: 4, Runs: []float64{4, 1, 2, 3}}},
		{"one", []float64{7}, Summary{Median: 7, Min: 7, Max: 7, Runs: []float64{7}}},
		{"none", nil, Summary{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summarize(tt.in)
			if got.Median != tt.want.Median || got.Min != tt.want.Min || got.Max != tt.want.Max || !slices.Equal(got.Runs, tt.want.Runs) {
				t.Errorf("Summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	xs := make([]float64, 200)
	for i := range xs {
		xs[i] = float64(200 - i) // 200..1, unsorted
	}
	tests := []struct {
		name string
		p    float64
		want float64
	}{
		{"p50", 50, 100},
		{"p99", 99, 198},
		{"p100", 100, 200},
		{"tiny", 0.1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(xs, tt.p); got != tt.want {
				t.Errorf("Percentile(p=%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
	if got := Percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("Percentile(nil) = %v, want NaN", got)
	}
}

func TestParseRTTs(t *testing.T) {
	out := `PING 192.0.2.102 (192.0.2.102) 56(84) bytes of data.
64 bytes from 192.0.2.102: icmp_seq=1 ttl=64 time=0.120 ms
64 bytes from 192.0.2.102: icmp_seq=2 ttl=64 time=1.05 ms
64 bytes from 192.0.2.102: icmp_seq=3 ttl=64 time=12 ms

--- 192.0.2.102 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 20ms
rtt min/avg/max/mdev = 0.120/4.390/12.000/5.400 ms
`
	got := ParseRTTs(out)
	want := []float64{120, 1050, 12000}
	if len(got) != len(want) {
		t.Fatalf("ParseRTTs = %v, want %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-6 {
			t.Errorf("ParseRTTs = %v, want %v", got, want)
		}
	}
}

func TestUDPFrame(t *testing.T) {
	src, _ := net.ParseMAC("02:00:00:00:00:01")
	dst, _ := net.ParseMAC("02:00:00:00:00:02")
	f := UDPFrame(src, dst, [4]byte{192, 0, 2, 101}, [4]byte{192, 0, 2, 102})
	if len(f) != FrameLen {
		t.Fatalf("len = %d, want %d", len(f), FrameLen)
	}
	// A header with its checksum in place sums to zero.
	if c := ipChecksum(f[14:34]); c != 0 {
		t.Errorf("IPv4 header checksum does not verify: %#04x", c)
	}
	if string(f[0:6]) != string(dst) || string(f[6:12]) != string(src) {
		t.Errorf("MACs wrong: % x", f[:12])
	}
	cfg := TrafgenConfig(f)
	if n := strings.Count(cfg, "0x"); n != FrameLen {
		t.Errorf("trafgen config has %d bytes, want %d:\n%s", n, FrameLen, cfg)
	}
}

func TestParseIperf(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		wantBPS float64
		wantErr string
		wantCC  string
	}{
		{"ok", `{"start":{},"end":{"sum_sent":{"bytes":1,"bits_per_second":2,"retransmits":3},"sum_received":{"bytes":1,"bits_per_second":11.8e9},"sender_tcp_congestion":"bbr","receiver_tcp_congestion":"cubic"}}`, 11.8e9, "", "bbr"},
		{"error", `{"start":{},"intervals":[],"end":{},"error":"unable to connect to server: Connection timed out"}`, 0, "unable to connect to server: Connection timed out", ""},
		{"noise first", "warning: foo\n{\"end\":{\"sum_received\":{\"bits_per_second\":5}}}", 5, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseIperf(tt.out)
			if err != nil {
				t.Fatal(err)
			}
			if r.End.SumReceived.BitsPerSecond != tt.wantBPS || r.Error != tt.wantErr || r.End.SenderCC != tt.wantCC {
				t.Errorf("got %v bit/s, error %q, congestion control %q; want %v, %q, %q",
					r.End.SumReceived.BitsPerSecond, r.Error, r.End.SenderCC, tt.wantBPS, tt.wantErr, tt.wantCC)
			}
		})
	}
}
