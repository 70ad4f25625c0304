package control

import (
	"reflect"
	"testing"
)

func TestCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		out  string
	}{
		{"1", []int{1}, "1"},
		{"0-3", []int{0, 1, 2, 3}, "0-3"},
		{"3, 0-1", []int{0, 1, 3}, "0-1,3"},
		{"2,2,1-2", []int{1, 2}, "1-2"},
		{"0,2,4-5,7", []int{0, 2, 4, 5, 7}, "0,2,4-5,7"},
		{"1023", []int{1023}, "1023"},
	} {
		got, err := ParseCPUList(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		if s := FormatCPUList(got); s != tc.out {
			t.Errorf("FormatCPUList(%v) = %q, want %q", got, s, tc.out)
		}
	}
	for _, bad := range []string{"", " ", "a", "1-", "-1", "1,,2", "2-1", "1024", "0-1024", "+1", "1.5", "0x1"} {
		if got, err := ParseCPUList(bad); err == nil {
			t.Errorf("ParseCPUList(%q) = %v, want an error", bad, got)
		}
	}
	if s := FormatCPUList(nil); s != "" {
		t.Errorf("FormatCPUList(nil) = %q, want empty", s)
	}
}

func TestProcsCPUs(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers, cfg.CPUs = 4, []int{2, 3}
	if got := Procs(cfg, 8); got != 2 {
		t.Errorf("workers 4 on CPUs 2-3: Procs = %d, want 2", got)
	}
	cfg.Workers = 1
	if got := Procs(cfg, 8); got != 1 {
		t.Errorf("workers 1 on CPUs 2-3: Procs = %d, want 1", got)
	}
}
