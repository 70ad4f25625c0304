package control

// Procs is how many Ps (GOMAXPROCS) an agent with cfg should run Go code
// on, at most limit (the runtime's default, which follows the CPUs and
// the cgroup's quota): the workers, plus one with busy polling.
//
// Why not every CPU: measured on 2 CPUs (bench/RESULTS.md), one worker on
// one P forwards 8-20 % more (TCP, tunnel and local pps) for less CPU than
// on two, because readers that hand frames to each other stay on one
// thread instead of waking idle Ps on the other CPU, and the CPUs left
// over run the traffic's own endpoints. More workers are for more cores,
// so they get more Ps. Busy polling gets one more: a reader the
// netpoller wakes while the others spin then has a P to run on at once.
func Procs(cfg *Config, limit int) int {
	n := max(cfg.Workers, 1)
	if cfg.BusyPoll > 0 {
		n++
	}
	return max(min(n, limit), 1)
}
