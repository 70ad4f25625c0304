// Package uring is the little of io_uring the switch uses: one ring per
// file descriptor owner, readv and writev requests queued and submitted
// together with one io_uring_enter, and their results read back from the
// shared completion ring. It exists because a TAP has no batched read or
// write: a system call per frame each way, while the ring takes a whole
// batch in one (see dataplane's TAP port). Libraries for io_uring
// in Go either allocate per request or hand completions over channels;
// the switch needs neither, so this stays small and allocation-free.
//
// A Ring is not safe for concurrent use: its owner serialises calls.
package uring
