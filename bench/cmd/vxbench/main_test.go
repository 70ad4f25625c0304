package main

import (
	"os"
	"strings"
	"testing"
)

func TestCheckCC(t *testing.T) {
	b, err := os.ReadFile(availableCC)
	if err != nil {
		t.Skipf("no %s: %v", availableCC, err)
	}
	have := strings.Fields(string(b))
	if len(have) == 0 {
		t.Fatalf("%s is empty", availableCC)
	}
	for _, cc := range have {
		if err := checkCC(cc); err != nil {
			t.Errorf("checkCC(%q) = %v, want nil", cc, err)
		}
	}
	for _, cc := range []string{"no-such-cc", "", strings.ToUpper(have[0]) + "x"} {
		err := checkCC(cc)
		if err == nil {
			t.Errorf("checkCC(%q) = nil, want an error", cc)
		} else if !strings.Contains(err.Error(), have[0]) {
			t.Errorf("checkCC(%q) = %v, want it to list what is available", cc, err)
		}
	}
}
