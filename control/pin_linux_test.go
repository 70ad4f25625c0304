package control

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// pinChildEnv makes the test binary a child that pins itself to the CPU
// list in the variable, makes more threads, and prints each thread's
// Cpus_allowed_list, so that the parent test's own threads stay as they
// are.
const pinChildEnv = "VXSWITCH_TEST_PIN_CHILD"

func TestMain(m *testing.M) {
	if list := os.Getenv(pinChildEnv); list != "" {
		os.Exit(pinChild(list))
	}
	os.Exit(m.Run())
}

func pinChild(list string) int {
	cpus, err := ParseCPUList(list)
	if err == nil {
		err = PinCPUs(cpus)
	}
	if err != nil {
		fmt.Println("error:", err)
		return 0
	}
	// Threads made after pinning must inherit it: lock goroutines to
	// threads of their own, all at once.
	var wg, started sync.WaitGroup
	release := make(chan struct{})
	for range 4 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			started.Done()
			<-release
		}()
	}
	started.Wait()
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/status")
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				fmt.Printf("thread %s: %s\n", t.Name(), strings.TrimSpace(v))
			}
		}
	}
	close(release)
	wg.Wait()
	return 0
}

func runPinChild(t *testing.T, list string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), pinChildEnv+"="+list)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	return string(out)
}

// PinCPUs moves every thread, and threads made later inherit it.
func TestPinCPUs(t *testing.T) {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	cpus := setCPUs(&allowed)
	last := cpus[len(cpus)-1]
	out := runPinChild(t, fmt.Sprint(last))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 5 { // the main thread, the four locked ones, the runtime's
		t.Fatalf("want at least 5 threads, got:\n%s", out)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "thread ") || !strings.HasSuffix(l, fmt.Sprintf(": %d", last)) {
			t.Errorf("want every thread on CPU %d, got %q in:\n%s", last, l, out)
		}
	}
}

// A CPU the process may not use is refused with the CPUs it may.
func TestPinCPUsNotAllowed(t *testing.T) {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	out := runPinChild(t, "1023")
	want := fmt.Sprintf("error: cpus: CPU 1023 is not one this process may run on (it may use %s)", FormatCPUList(setCPUs(&allowed)))
	if strings.TrimSpace(out) != want {
		t.Errorf("got %q, want %q", strings.TrimSpace(out), want)
	}
}
