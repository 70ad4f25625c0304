package control

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/fdb"
)

func TestMetricsHandler(t *testing.T) {
	calls := 0
	stats := func() StatsReply {
		calls++
		return StatsReply{
			Ports: []PortStats{{Name: "c0", PortCounters: dataplane.PortCounters{
				RxPackets: 1, RxBytes: 60, TxPackets: 2, TxBytes: 120, Drops: map[string]uint64{"too_big": 3, "short": 0},
			}, FDB: fdb.PortStats{Entries: 4, Moves: 5}}},
			Tunnel: &dataplane.PortCounters{RxPackets: 7, Drops: map[string]uint64{"no_vni": 8}},
			FDB:    fdb.Stats{Entries: 9, Static: 1, Capacity: 8192, Learned: 10, Moves: 11, Evictions: 12, Aged: 13, Refused: 14},
		}
	}
	h := metricsHandler(stats)
	if calls != 0 {
		t.Errorf("stats read %d times before any scrape", calls)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`vxswitch_port_rx_packets_total{port="c0"} 1`,
		`vxswitch_port_rx_bytes_total{port="c0"} 60`,
		`vxswitch_port_tx_packets_total{port="c0"} 2`,
		`vxswitch_port_tx_bytes_total{port="c0"} 120`,
		`vxswitch_port_drops_total{port="c0",reason="too_big"} 3`,
		`vxswitch_port_drops_total{port="c0",reason="short"} 0`,
		`vxswitch_port_rx_packets_total{port="vxlan"} 7`,
		`vxswitch_port_drops_total{port="vxlan",reason="no_vni"} 8`,
		`vxswitch_fdb_port_entries{port="c0"} 4`,
		`vxswitch_fdb_port_moves_total{port="c0"} 5`,
		"vxswitch_fdb_entries 9", "vxswitch_fdb_static_entries 1", "vxswitch_fdb_capacity 8192",
		"vxswitch_fdb_learned_total 10", "vxswitch_fdb_moves_total 11", "vxswitch_fdb_evictions_total 12",
		"vxswitch_fdb_aged_total 13", "vxswitch_fdb_refused_total 14",
		"go_goroutines",
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want+" ") {
			t.Errorf("missing %q", want)
		}
	}
	if calls != 1 {
		t.Errorf("stats read %d times for one scrape, want 1", calls)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET / = %d, want 404", rec.Code)
	}
}

func TestAgentServesMetrics(t *testing.T) {
	cfg := testConfig(t, "c0")
	cfg.Metrics.Listen = "127.0.0.1:0"
	a := startTest(t, cfg, &fakeDevices{})
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://"+a.MetricsAddr().String()+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `vxswitch_port_rx_packets_total{port="c0"} 0`) || !strings.Contains(string(b), "vxswitch_fdb_capacity 8192") {
		t.Errorf("metrics:\n%s", b)
	}
	a.Close()
	if _, err := http.Get("http://" + a.MetricsAddr().String() + "/metrics"); err == nil {
		t.Error("metrics still served after Close")
	}
}
