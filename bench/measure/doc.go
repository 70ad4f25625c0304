// Package measure runs the end-to-end measurements of the benchmark
// harness inside a lab built by bench/lab: 64-byte packets per second
// with trafgen, TCP throughput with iperf3, and ping round-trip times.
// Each function does one run and returns numbers; Summarize turns several
// runs into a median and a range. Every external command is bounded in
// time, so a switch that stalls traffic gives a zero with a reason, never
// a hang.
package measure
