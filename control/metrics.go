package control

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vxswitch/vxswitch/dataplane"
)

// metricsHandler serves Prometheus /metrics (and only that path) from its
// own registry: the switch's counters, the Go runtime and the process.
func metricsHandler(stats func() StatsReply) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStatsCollector(stats),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// statsCollector turns a StatsReply into metrics when Prometheus scrapes:
// the forwarding path keeps its plain counters and pays nothing per packet
// for being exported. The tunnel's counters carry port="vxlan".
type statsCollector struct {
	stats func() StatsReply

	rxPackets, rxBytes, txPackets, txBytes, drops *prometheus.Desc
	portMACs, portMoves                           *prometheus.Desc
	fdbEntries, fdbStatic, fdbCapacity            *prometheus.Desc
	fdbLearned, fdbMoves, fdbEvictions            *prometheus.Desc
	fdbAged, fdbRefused                           *prometheus.Desc
}

var _ prometheus.Collector = (*statsCollector)(nil)

func newStatsCollector(stats func() StatsReply) *statsCollector {
	port := []string{"port"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("vxswitch_"+name, help, labels, nil)
	}
	return &statsCollector{
		stats:        stats,
		rxPackets:    d("port_rx_packets_total", "Frames received on the port.", port...),
		rxBytes:      d("port_rx_bytes_total", "Bytes received on the port.", port...),
		txPackets:    d("port_tx_packets_total", "Frames sent on the port.", port...),
		txBytes:      d("port_tx_bytes_total", "Bytes sent on the port.", port...),
		drops:        d("port_drops_total", "Frames dropped, by port and reason.", "port", "reason"),
		portMACs:     d("fdb_port_entries", "FDB entries on the port.", port...),
		portMoves:    d("fdb_port_moves_total", "MACs that moved onto the port.", port...),
		fdbEntries:   d("fdb_entries", "FDB entries."),
		fdbStatic:    d("fdb_static_entries", "Static FDB entries."),
		fdbCapacity:  d("fdb_capacity", "FDB capacity (mac-table-size)."),
		fdbLearned:   d("fdb_learned_total", "New FDB entries learned."),
		fdbMoves:     d("fdb_moves_total", "MACs that moved to another port."),
		fdbEvictions: d("fdb_evictions_total", "FDB entries evicted because the table or a port limit was full."),
		fdbAged:      d("fdb_aged_total", "FDB entries removed by ageing."),
		fdbRefused:   d("fdb_refused_total", "MACs not learned because the table was full of static entries."),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.rxPackets, c.rxBytes, c.txPackets, c.txBytes, c.drops, c.portMACs, c.portMoves,
		c.fdbEntries, c.fdbStatic, c.fdbCapacity, c.fdbLearned, c.fdbMoves, c.fdbEvictions, c.fdbAged, c.fdbRefused,
	} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	port := func(name string, pc dataplane.PortCounters) {
		counter(c.rxPackets, pc.RxPackets, name)
		counter(c.rxBytes, pc.RxBytes, name)
		counter(c.txPackets, pc.TxPackets, name)
		counter(c.txBytes, pc.TxBytes, name)
		for reason, n := range pc.Drops {
			counter(c.drops, n, name, reason)
		}
	}
	for _, p := range s.Ports {
		port(p.Name, p.PortCounters)
		gauge(c.portMACs, p.FDB.Entries, p.Name)
		counter(c.portMoves, p.FDB.Moves, p.Name)
	}
	if s.Tunnel != nil {
		port(dataplane.TunnelName, *s.Tunnel)
	}
	f := s.FDB
	gauge(c.fdbEntries, f.Entries)
	gauge(c.fdbStatic, f.Static)
	gauge(c.fdbCapacity, f.Capacity)
	counter(c.fdbLearned, f.Learned)
	counter(c.fdbMoves, f.Moves)
	counter(c.fdbEvictions, f.Evictions)
	counter(c.fdbAged, f.Aged)
	counter(c.fdbRefused, f.Refused)
}
