package mmsg

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// A Reader receives batches on a non-blocking socket registered with Go's
// netpoller (the syscall.RawConn of an os.File, net.UDPConn, ...). The
// callback given to RawConn.Read is made once in NewReader, so Read does
// not allocate. Use one Reader per goroutine.
type Reader struct {
	rc    syscall.RawConn
	b     *Batch
	n     int
	flags int
	got   int
	err   error
	fn    func(fd uintptr) bool
}

// NewReader returns a Reader that receives into b through rc.
func NewReader(rc syscall.RawConn, b *Batch) *Reader {
	r := &Reader{rc: rc, b: b}
	r.fn = r.recv
	return r
}

// Batch returns the Batch the Reader receives into.
func (r *Reader) Batch() *Batch { return r.b }

func (r *Reader) recv(fd uintptr) bool {
	r.got, r.err = r.b.Recv(int(fd), r.n, r.flags)
	return r.err != unix.EAGAIN
}

// Read waits in the netpoller until the socket is readable, then receives
// up to n messages (those ready, without waiting for more) with one
// recvmmsg call. An error from the RawConn (the file was closed, a
// deadline passed) is returned as is; so is an error from recvmmsg.
func (r *Reader) Read(n, flags int) (int, error) {
	r.n, r.flags = min(n, r.b.Cap()), flags
	r.got, r.err = 0, nil
	if err := r.rc.Read(r.fn); err != nil {
		return 0, err
	}
	return r.got, r.err
}

// A Writer sends batches on a non-blocking socket registered with Go's
// netpoller, waiting for writability when the kernel's buffer is full.
// Like Reader it makes its callback once and does not allocate in Write.
// Use one Writer per goroutine, or serialise calls.
type Writer struct {
	rc       syscall.RawConn
	b        *Batch
	from, to int
	flags    int
	err      error
	fn       func(fd uintptr) bool
}

// NewWriter returns a Writer that sends from b through rc.
func NewWriter(rc syscall.RawConn, b *Batch) *Writer {
	w := &Writer{rc: rc, b: b}
	w.fn = w.send
	return w
}

// Batch returns the Batch the Writer sends from.
func (w *Writer) Batch() *Batch { return w.b }

func (w *Writer) send(fd uintptr) bool {
	for w.from < w.to {
		n, err := w.b.Send(int(fd), w.from, w.to, w.flags)
		if err == unix.EAGAIN {
			return false // wait for writability, resume at w.from
		}
		if err != nil {
			w.err = err
			return true
		}
		w.from += n
	}
	return true
}

// Write sends messages [from, to), completing partial sends and waiting in
// the netpoller while the kernel answers EAGAIN. It returns the index of
// the first message not sent: to when all went out, else the message at
// next was refused with err (EMSGSIZE, ENOBUFS, ...) and the caller decides
// whether to skip it (Write(next+1, to, flags)) or give up. An error from
// the RawConn (the file was closed) is returned as is.
func (w *Writer) Write(from, to, flags int) (next int, err error) {
	w.from, w.to, w.flags, w.err = from, to, flags, nil
	if err := w.rc.Write(w.fn); err != nil {
		return w.from, err
	}
	return w.from, w.err
}
