package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// Client talks to an agent over its control socket. The zero value is not
// usable; make one with NewClient. Methods may be called concurrently.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the agent listening on socket. It does
// not connect until the first call.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:    1,
		IdleConnTimeout: 10 * time.Second,
	}
	// Adding a port may move an interface into a namespace and set
	// addresses; nothing the agent does takes anywhere near this long.
	return &Client{socket: socket, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Socket is the path the client connects to.
func (c *Client) Socket() string { return c.socket }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// SocketError means the agent could not be reached at all. Its message is
// a sentence for the user: what is wrong and what to do.
type SocketError struct {
	Path string
	Err  error
}

func (e *SocketError) Unwrap() error { return e.Err }

func (e *SocketError) Error() string {
	const start = "start it with `vxswitch agent --config FILE`"
	switch {
	case errors.Is(e.Err, syscall.EACCES), errors.Is(e.Err, syscall.EPERM):
		return fmt.Sprintf("permission denied connecting to the agent at %s: run as root or as a member of the socket's group (control.group)", e.Path)
	case errors.Is(e.Err, syscall.ENOENT):
		return fmt.Sprintf("the vxswitch agent is not running (no socket at %s); %s, or point --socket or VXSWITCH_SOCKET at its socket", e.Path, start)
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return fmt.Sprintf("the vxswitch agent is not running (nothing listens on %s); %s", e.Path, start)
	}
	return fmt.Sprintf("cannot reach the vxswitch agent at %s: %v; is it running? %s", e.Path, e.Err, start)
}

// Show returns the bridge, its ports and VTEPs.
func (c *Client) Show(ctx context.Context) (ShowReply, error) {
	var r ShowReply
	err := c.do(ctx, http.MethodGet, "/v1/show", nil, &r)
	return r, err
}

// FDB lists the FDB entries that match q.
func (c *Client) FDB(ctx context.Context, q FDBQuery) ([]FDBEntry, error) {
	v := url.Values{}
	if q.VLAN != nil {
		v.Set("vlan", strconv.Itoa(int(*q.VLAN)))
	}
	if q.Port != "" {
		v.Set("port", q.Port)
	}
	path := "/v1/fdb"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var r []FDBEntry
	err := c.do(ctx, http.MethodGet, path, nil, &r)
	return r, err
}

// FDBAdd adds a static entry.
func (c *Client) FDBAdd(ctx context.Context, r FDBAddRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/fdb", r, nil)
}

// FDBDel removes an entry.
func (c *Client) FDBDel(ctx context.Context, r FDBDelRequest) error {
	path := "/v1/fdb/" + strconv.Itoa(int(r.VLAN)) + "/" + url.PathEscape(r.MAC)
	return c.do(ctx, http.MethodDelete, path, nil, nil)
}

// FDBFlush removes learned entries and says how many.
func (c *Client) FDBFlush(ctx context.Context, r FDBFlushRequest) (FlushReply, error) {
	var reply FlushReply
	err := c.do(ctx, http.MethodPost, "/v1/fdb/flush", r, &reply)
	return reply, err
}

// PortAdd adds a port at run time.
func (c *Client) PortAdd(ctx context.Context, r PortAddRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/ports", r, nil)
}

// PortDel removes a port.
func (c *Client) PortDel(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/ports/"+url.PathEscape(name), nil, nil)
}

// Members lists the gossip members.
func (c *Client) Members(ctx context.Context) ([]MemberInfo, error) {
	var r []MemberInfo
	err := c.do(ctx, http.MethodGet, "/v1/members", nil, &r)
	return r, err
}

// Stats returns the counters.
func (c *Client) Stats(ctx context.Context) (StatsReply, error) {
	var r StatsReply
	err := c.do(ctx, http.MethodGet, "/v1/stats", nil, &r)
	return r, err
}

// do sends one request. Errors are a *SocketError when the agent cannot be
// reached, an *APIError when it answered with one.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://vxswitch"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return &SocketError{Path: c.socket, Err: op.Err}
		}
		return fmt.Errorf("control socket %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("control socket %s: reading the reply: %w", c.socket, err)
	}
	if resp.StatusCode >= 300 {
		ae := &APIError{}
		if json.Unmarshal(data, ae) != nil || ae.Code == "" {
			return &APIError{Code: CodeInternal, Message: fmt.Sprintf("the agent answered %s", resp.Status)}
		}
		return ae
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("control socket %s: bad reply: %w", c.socket, err)
	}
	return nil
}
