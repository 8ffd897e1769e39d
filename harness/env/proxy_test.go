package env

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// echoServer is a real TCP echo server: each connection gets back what it
// sends, and is closed when the client half-closes.
type echoServer struct {
	ln  net.Listener
	wg  sync.WaitGroup
	mu  sync.Mutex
	cs  []net.Conn
	got atomic.Int64 // bytes received, all connections
}

// countingReader counts what it reads into n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.cs = append(s.cs, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				io.Copy(c, countingReader{c, &s.got})
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.cs {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

func startProxy(t *testing.T, upstream string) *Proxy {
	t.Helper()
	p, err := NewProxy(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("proxy close: %v", err)
		}
	})
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads it back within d.
func roundTrip(c net.Conn, msg string, d time.Duration) error {
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echo mismatch: " + string(buf))
	}
	return nil
}

// expectClosed checks that a read on c ends with EOF or a reset (not a
// timeout) within d.
func expectClosed(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("connection still open after %v: read error %v", d, err)
	}
}

// expectStalled checks that a read on c times out after d.
func expectStalled(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read on a blackholed link: %d bytes, %v; want a timeout", n, err)
	}
}

func TestProxyPassThrough(t *testing.T) {
	t.Parallel()
	echo := startEcho(t)
	p := startProxy(t, echo.addr())
	c := dial(t, p.Addr())
	mustRoundTrip(t, c, "hello", 2*time.Second)

	// 4 MiB both ways at once, then a half-close: every byte comes back in
	// order and the close travels through.
	data := make([]byte, 4<<20)
	rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read back: %v (%d bytes)", err, len(got))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes back, want the %d sent, in order", len(got), len(data))
	}
	waitFor(t, 2*time.Second, "proxied connections to end", func() bool { return p.Conns() == 0 })
}

func TestProxyCut(t *testing.T) {
	t.Parallel()
	echo := startEcho(t)
	p := startProxy(t, echo.addr())
	before := dial(t, p.Addr())
	mustRoundTrip(t, before, "a", 2*time.Second)
	setMode(t, p, LinkCut, 0)
	if n := p.Conns(); n != 0 {
		t.Errorf("%d connections open after the cut", n)
	}
	expectClosed(t, before, time.Second)
	// A new connection is accepted, then closed at once.
	during := dial(t, p.Addr())
	expectClosed(t, during, time.Second)

	setMode(t, p, LinkOK, 0)
	after := dial(t, p.Addr())
	mustRoundTrip(t, after, "healed", 2*time.Second)
}

func TestProxyBlackhole(t *testing.T) {
	t.Parallel()
	echo := startEcho(t)
	p := startProxy(t, echo.addr())
	before := dial(t, p.Addr())
	mustRoundTrip(t, before, "a", 2*time.Second)
	setMode(t, p, LinkBlackhole, 0)
	if _, err := io.WriteString(before, "held"); err != nil {
		t.Fatal(err)
	}
	expectStalled(t, before, 300*time.Millisecond)
	during := dial(t, p.Addr()) // accepted, but gets nothing
	if _, err := io.WriteString(during, "new"); err != nil {
		t.Fatal(err)
	}
	expectStalled(t, during, 300*time.Millisecond)

	// Healing delivers what was held, in order, on both connections.
	setMode(t, p, LinkOK, 0)
	for _, tc := range []struct {
		c    net.Conn
		want string
	}{{before, "held"}, {during, "new"}} {
		buf := make([]byte, len(tc.want))
		tc.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(tc.c, buf); err != nil || string(buf) != tc.want {
			t.Fatalf("after heal: %q, %v; want %q", buf, err, tc.want)
		}
		mustRoundTrip(t, tc.c, "more", 2*time.Second)
	}
}

func TestProxySlow(t *testing.T) {
	t.Parallel()
	const latency = 150 * time.Millisecond
	echo := startEcho(t)
	p := startProxy(t, echo.addr())
	conns := []net.Conn{dial(t, p.Addr()), dial(t, p.Addr())}
	for _, c := range conns {
		mustRoundTrip(t, c, "warm", 2*time.Second)
	}
	if err := p.SetMode(LinkSlow, 0); err == nil {
		t.Error("LinkSlow without latency accepted")
	}
	setMode(t, p, LinkSlow, latency)
	if m, l := p.Mode(); m != LinkSlow || l != latency {
		t.Errorf("Mode() = %s, %v", m, l)
	}
	// Two connections at once: each round trip takes at least the latency
	// (in fact twice: once per direction), and they do not wait for each other.
	start := time.Now()
	var wg sync.WaitGroup
	rtts := make([]time.Duration, len(conns))
	errs := make([]error, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			errs[i] = roundTrip(c, "slow", 5*time.Second)
			rtts[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	total := time.Since(start)
	for i := range conns {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if rtts[i] < 2*latency {
			t.Errorf("round trip %d took %v on a link slowed by %v each way", i, rtts[i], latency)
		}
	}
	if total >= 4*latency-20*time.Millisecond {
		t.Errorf("two concurrent round trips took %v: connections delayed each other", total)
	}

	setMode(t, p, LinkOK, 0)
	t0 := time.Now()
	mustRoundTrip(t, conns[0], "fast", 2*time.Second)
	if d := time.Since(t0); d >= latency {
		t.Errorf("round trip after heal took %v", d)
	}
}

// LinkReplyLost: a connection open when the mode is set sends a request
// that reaches the server, but its reply is discarded and the connection
// reset; a connection opened meanwhile passes; an open connection not used
// before the heal is spared.
func TestProxyReplyLost(t *testing.T) {
	t.Parallel()
	echo := startEcho(t)
	p := startProxy(t, echo.addr())
	used, spared := dial(t, p.Addr()), dial(t, p.Addr())
	mustRoundTrip(t, used, "warm", 2*time.Second)
	mustRoundTrip(t, spared, "warm", 2*time.Second)
	setMode(t, p, LinkReplyLost, 0)
	if m, _ := p.Mode(); m != LinkReplyLost {
		t.Fatalf("Mode() = %s", m)
	}

	before := echo.got.Load()
	err := roundTrip(used, "command", 2*time.Second)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("round trip on a connection open before reply-lost: %v; want a reset", err)
	}
	if got := echo.got.Load() - before; got != int64(len("command")) {
		t.Errorf("the server received %d bytes of the lost round trip, want %d", got, len("command"))
	}
	if n := p.RepliesLost(); n != 1 {
		t.Errorf("RepliesLost() = %d, want 1", n)
	}

	// A retry on a fresh connection goes through, twice.
	during := dial(t, p.Addr())
	mustRoundTrip(t, during, "retry", 2*time.Second)
	mustRoundTrip(t, during, "again", 2*time.Second)

	setMode(t, p, LinkOK, 0)
	mustRoundTrip(t, spared, "healed", 2*time.Second)
	if n := p.RepliesLost(); n != 1 {
		t.Errorf("RepliesLost() = %d after the heal, want 1", n)
	}
}

func TestProxyUpstreamDownAndClose(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := startProxy(t, addr)
	c := dial(t, p.Addr())
	expectClosed(t, c, 2*time.Second)

	// Close ends blackholed connections and every goroutine (goleak checks).
	echo := startEcho(t)
	q, err := NewProxy(echo.addr())
	if err != nil {
		t.Fatal(err)
	}
	held := dial(t, q.Addr())
	mustRoundTrip(t, held, "x", 2*time.Second)
	setMode(t, q, LinkBlackhole, 0)
	if _, err := io.WriteString(held, "stuck"); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	expectClosed(t, held, time.Second)
	if err := q.SetMode(LinkOK, 0); err == nil {
		t.Error("SetMode after Close succeeded")
	}
	if err := p.SetMode("flaky", 0); err == nil {
		t.Error("unknown mode accepted")
	}
}

// mustRoundTrip is roundTrip, failing the test on an error.
func mustRoundTrip(t *testing.T, c net.Conn, msg string, d time.Duration) {
	t.Helper()
	if err := roundTrip(c, msg, d); err != nil {
		t.Fatal(err)
	}
}

// setMode is p.SetMode, failing the test on an error.
func setMode(t *testing.T, p *Proxy, mode LinkMode, latency time.Duration) {
	t.Helper()
	if err := p.SetMode(mode, latency); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for delay := time.Millisecond; !cond(); delay = min(2*delay, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-time.After(delay)
	}
}
