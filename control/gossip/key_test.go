package gossip

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadKey(t *testing.T) {
	for _, n := range []int{16, 24, 32} {
		key := bytes.Repeat([]byte{byte(n)}, n)
		p := writeFile(t, "gossip.key", "  \n"+base64.StdEncoding.EncodeToString(key)+"\r\n\n")
		got, err := LoadKey(p)
		if err != nil {
			t.Fatalf("%d-byte key: %v", n, err)
		}
		if !bytes.Equal(got, key) {
			t.Errorf("%d-byte key: got % x, want % x", n, got, key)
		}
	}
}

func TestLoadKeyErrors(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdefXYZ")) // 19 bytes
	tests := []struct {
		name    string
		content *string // nil: no such file
		want    []string
	}{
		{name: "missing", want: []string{"no such file or directory"}},
		{name: "empty", content: ptr(" \n"), want: []string{"empty", "16, 24 or 32"}},
		{name: "not base64", content: ptr("this is not base64!\n"), want: []string{"not valid base64", "illegal base64 data at input byte"}},
		{name: "URL alphabet", content: ptr(strings.Repeat("-_", 12)), want: []string{"not valid base64"}},
		{name: "missing padding", content: ptr("AAAAAAAAAAAAAAAAAAAAAA"), want: []string{"not valid base64"}},
		{name: "19 bytes", content: &secret, want: []string{"the key is 19 bytes", "key size must be 16, 24 or 32 bytes"}},
		{name: "64 bytes", content: ptr(base64.StdEncoding.EncodeToString(make([]byte, 64))), want: []string{"the key is 64 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "gossip.key")
			if tt.content != nil {
				p = writeFile(t, "gossip.key", *tt.content)
			}
			key, err := LoadKey(p)
			if err == nil {
				t.Fatalf("LoadKey = % x, want an error", key)
			}
			msg := err.Error()
			for _, w := range append(tt.want, p) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error %q shows the key file's content", msg)
			}
		})
	}
}

func TestLoadKeyUnreadable(t *testing.T) {
	dir := t.TempDir() // a directory is unreadable as a file, also for root
	if _, err := LoadKey(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("LoadKey(directory) = %v, want an error naming %s", err, dir)
	}
}

func ptr[T any](v T) *T { return &v }
