package measure

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestWakeup(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, after unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	cpus := [][2]int{{0, 0}}
	if runtime.NumCPU() > 1 {
		cpus = append(cpus, [2]int{0, 1})
	}
	for _, c := range cpus {
		d, err := Wakeup(c[0], c[1], 5, time.Millisecond)
		if err != nil {
			t.Fatalf("Wakeup(%d, %d): %v", c[0], c[1], err)
		}
		if d <= 0 {
			t.Errorf("Wakeup(%d, %d) = %v, want a positive round trip", c[0], c[1], d)
		}
	}
	if _, err := Wakeup(0, 0, 0, 0); err == nil {
		t.Error("Wakeup with 0 rounds: no error")
	}
	// A CPU that does not exist fails on either side, and leaves nothing
	// pinned.
	if _, err := Wakeup(0, 1023, 1, 0); err == nil {
		t.Error("Wakeup on a CPU that does not exist (echo side): no error")
	}
	if _, err := Wakeup(1023, 0, 1, 0); err == nil {
		t.Error("Wakeup on a CPU that does not exist (caller side): no error")
	}
	if err := unix.SchedGetaffinity(0, &after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("the thread's CPUs changed: %d before, %d after", before.Count(), after.Count())
	}
}

// BenchmarkWakeup: ns/op is the mean round trip (two wake-ups) after 1 ms
// idle, µs-p50 its median. Give it a count:
//
//	go test -run '^$' -bench Wakeup -benchtime 400x ./bench/measure/
func BenchmarkWakeup(b *testing.B) {
	b.Run("same-cpu", func(b *testing.B) { benchWakeup(b, 0, 0) })
	b.Run("cross-cpu", func(b *testing.B) {
		if runtime.NumCPU() < 2 {
			b.Skip("one CPU")
		}
		benchWakeup(b, 0, 1)
	})
}

func benchWakeup(b *testing.B, cpuA, cpuB int) {
	p, err := newWakePair(cpuA, cpuB)
	if err != nil {
		b.Fatal(err)
	}
	defer p.close()
	rtts := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		time.Sleep(time.Millisecond)
		b.StartTimer()
		d, err := p.roundTrip()
		if err != nil {
			b.Fatal(err)
		}
		rtts = append(rtts, d)
	}
	b.StopTimer()
	slices.Sort(rtts)
	b.ReportMetric(float64(rtts[len(rtts)/2].Nanoseconds())/1e3, "µs-p50")
}
