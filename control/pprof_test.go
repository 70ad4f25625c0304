package control_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/control/controltest"
)

// socketGet GETs path from the API server on the unix socket sock and
// returns the status and the body.
func socketGet(t *testing.T, sock, path string) (int, []byte) {
	t.Helper()
	hc := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}},
	}
	resp, err := hc.Get("http://vxswitch" + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp.StatusCode, body
}

// TestPprofProfile fetches a one-second CPU profile through the control
// server and checks that it is a gzip'd, non-empty profile.proto: what
// `go tool pprof` and vxbench -profile read.
func TestPprofProfile(t *testing.T) {
	f := newFake()
	sock := controltest.Serve(t, f)
	status, body := socketGet(t, sock, "/debug/pprof/profile?seconds=1")
	if status != http.StatusOK {
		t.Fatalf("status %d, body %q", status, body)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("profile is not gzip'd: %v (%d bytes)", err, len(body))
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("profile: gunzip: %v", err)
	}
	if len(raw) == 0 {
		t.Fatal("profile is empty after gunzip")
	}
	fields, err := protoFields(raw)
	if err != nil {
		t.Fatalf("profile is not a protobuf message: %v", err)
	}
	// Profile.sample_type (1) and Profile.string_table (6) are always
	// there, even without samples.
	if fields[1] == 0 || fields[6] == 0 {
		t.Errorf("profile lacks sample_type or string_table: fields %v", fields)
	}
	if !bytes.Contains(raw, []byte("nanoseconds")) {
		t.Errorf("CPU profile does not name its unit (nanoseconds)")
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("profiling reached the backend: %+v", calls)
	}
}

// protoFields walks the top-level fields of a protobuf message and counts
// them by field number; it fails on anything malformed.
func protoFields(b []byte) (map[uint64]int, error) {
	n := map[uint64]int{}
	for len(b) > 0 {
		tag, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, errors.New("bad tag varint")
		}
		b = b[k:]
		if tag>>3 == 0 {
			return nil, errors.New("field number 0")
		}
		switch tag & 7 {
		case 0: // varint
			if _, k = binary.Uvarint(b); k <= 0 {
				return nil, errors.New("bad varint")
			}
			b = b[k:]
		case 1: // 64-bit
			if len(b) < 8 {
				return nil, errors.New("short fixed64")
			}
			b = b[8:]
		case 2: // length-delimited
			l, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < l {
				return nil, errors.New("bad length")
			}
			b = b[k+int(l):]
		case 5: // 32-bit
			if len(b) < 4 {
				return nil, errors.New("short fixed32")
			}
			b = b[4:]
		default:
			return nil, fmt.Errorf("wire type %d", tag&7)
		}
		n[tag>>3]++
	}
	return n, nil
}

// TestPprofIndexAndNamed checks the index and a named profile, and that
// the rest of the API still answers with its JSON 404.
func TestPprofIndexAndNamed(t *testing.T) {
	sock := controltest.Serve(t, newFake())
	status, body := socketGet(t, sock, "/debug/pprof/")
	if status != http.StatusOK || !strings.Contains(string(body), "goroutine") || !strings.Contains(string(body), "heap") {
		t.Errorf("index: status %d, body lacks goroutine/heap:\n%.300s", status, body)
	}
	status, body = socketGet(t, sock, "/debug/pprof/goroutine?debug=1")
	if status != http.StatusOK || !strings.Contains(string(body), "goroutine profile:") {
		t.Errorf("goroutine?debug=1: status %d:\n%.300s", status, body)
	}
	status, body = socketGet(t, sock, "/debug/pprof/cmdline")
	if status != http.StatusOK || len(body) == 0 {
		t.Errorf("cmdline: status %d, %d bytes", status, len(body))
	}
	status, body = socketGet(t, sock, "/debug/bogus")
	if status != http.StatusNotFound || !strings.Contains(string(body), `"not_found"`) {
		t.Errorf("/debug/bogus: status %d, body %s; want the API's JSON 404", status, body)
	}
}
