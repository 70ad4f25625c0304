package control

// Procs is how many Ps (GOMAXPROCS) an agent with cfg should run Go code
// on, at most limit (the runtime's default, which follows the CPUs and
// the cgroup's quota): one per worker.
//
// Why not every CPU: measured on 2 CPUs (bench/RESULTS.md), one worker on
// one P forwards 8-20 % more (TCP, tunnel and local pps) for less CPU than
// on two, because readers that hand frames to each other stay on one
// thread instead of waking idle Ps on the other CPU, and the CPUs left
// over run the traffic's own endpoints. More workers are for more cores,
// so they get more Ps. Busy polling needs no extra P: its readers sleep
// on a waker, not in the netpoller (see busypoll.Waker), and with one P
// its ping p50 was the lowest measured. With cpus: set, at most one P
// per CPU listed.
func Procs(cfg *Config, limit int) int {
	if len(cfg.CPUs) > 0 {
		limit = min(limit, len(cfg.CPUs))
	}
	return max(min(cfg.Workers, limit), 1)
}
