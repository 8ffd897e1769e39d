package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy is an in-process TCP proxy from a port of 127.0.0.1 to one upstream
// address, whose link state can be changed at any moment with SetMode:
//
//   - LinkOK: bytes are forwarded as they come.
//   - LinkCut: every open connection is closed at once; new connections are
//     accepted and closed immediately, until the link is healed.
//   - LinkBlackhole: connections stay open but nothing is forwarded in either
//     direction: the proxy stops reading from both sides, so the peers' TCP
//     windows fill and their writes block (no data is dropped: each direction
//     holds at most the chunks it had already read). New connections are
//     accepted and get nothing; the upstream is dialled only once healed.
//   - LinkSlow: every chunk is delivered latency after it was read, in order,
//     in each direction (a round trip gains twice the latency). Chunks are
//     pipelined, and each connection is delayed on its own.
//   - LinkReplyLost: every connection open when the mode is set loses the
//     next reply the server sends it: what the client sends still reaches
//     the server, but the first bytes coming back are discarded and the
//     client's connection is reset (RST), so the client sees its command
//     fail although the server carried it out, and a client library that
//     retries runs it twice. Connections accepted while the mode holds pass
//     untouched, so a retry on a fresh connection goes through.
//
// Setting LinkOK again resumes forwarding on the connections that survived
// (blackholed or slowed ones) and for new ones. Close stops everything.
//
// Goroutines: one accept loop; per connection one supervisor plus a reader
// and a writer per direction. All of them end by Close.
type Proxy struct {
	upstream string
	ln       net.Listener
	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc

	mu      sync.Mutex // guards the fields below
	mode    LinkMode
	latency time.Duration
	changed chan struct{} // closed and replaced at every SetMode
	conns   map[*proxyConn]struct{}
	closed  bool
	lost    int64 // replies discarded by LinkReplyLost

	wg sync.WaitGroup // the accept loop and every connection's goroutines
}

// proxyDialTimeout bounds the connection to the upstream.
const proxyDialTimeout = 5 * time.Second

// proxyQueue is how many chunks each direction holds between its reader and
// its writer (it matters for LinkSlow, where chunks wait for their time).
const proxyQueue = 64

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// NewProxy listens on a free port of 127.0.0.1 and forwards to upstream
// ("host:port"), starting in LinkOK. The caller must Close it.
func NewProxy(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("env: proxy to %s: listen: %w", upstream, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		upstream: upstream,
		ln:       ln,
		ctx:      ctx,
		cancel:   cancel,
		mode:     LinkOK,
		changed:  make(chan struct{}),
		conns:    make(map[*proxyConn]struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the proxy's listening address, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Upstream is the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

// Mode returns the current link state and latency.
func (p *Proxy) Mode() (LinkMode, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.latency
}

// RepliesLost returns how many replies LinkReplyLost has discarded (each
// with its connection reset) since the proxy started.
func (p *Proxy) RepliesLost() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lost
}

// Conns returns the number of open proxied connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// SetMode changes the link state; latency is used by LinkSlow only and must
// then be positive. Switching to LinkCut closes every open connection before
// SetMode returns.
func (p *Proxy) SetMode(mode LinkMode, latency time.Duration) error {
	switch mode {
	case LinkOK, LinkCut, LinkBlackhole, LinkReplyLost:
		latency = 0
	case LinkSlow:
		if latency <= 0 {
			return fmt.Errorf("env: proxy: link mode %q needs a positive latency, got %v", mode, latency)
		}
	default:
		return fmt.Errorf("env: proxy: unknown link mode %q (ok, cut, blackhole, slow, reply-lost)", mode)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errors.New("env: proxy: closed")
	}
	p.mode, p.latency = mode, latency
	close(p.changed)
	p.changed = make(chan struct{})
	var victims []*proxyConn
	for c := range p.conns {
		switch {
		case mode == LinkCut:
			victims = append(victims, c)
		case mode == LinkReplyLost:
			c.loseReply = true // only the connections open now
		default:
			c.loseReply = false
		}
	}
	p.mu.Unlock()
	for _, c := range victims {
		c.teardown()
	}
	return nil
}

// Close stops listening, closes every connection and waits for all the
// proxy's goroutines to end. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	p.cancel()
	err := p.ln.Close()
	for _, c := range conns {
		c.teardown()
	}
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// state returns the link state and a channel closed at its next change.
func (p *Proxy) state() (LinkMode, time.Duration, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.latency, p.changed
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	var delay time.Duration
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or similar: back off, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-p.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		p.mu.Lock()
		if p.closed || p.mode == LinkCut {
			p.mu.Unlock()
			conn.Close()
			continue
		}
		ctx, cancel := context.WithCancel(p.ctx)
		c := &proxyConn{p: p, client: conn, ctx: ctx, cancel: cancel}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go c.run()
	}
}

// proxyConn is one client connection and its upstream connection.
type proxyConn struct {
	p      *Proxy
	client net.Conn
	ctx    context.Context // cancelled by teardown
	cancel context.CancelFunc

	upstream net.Conn // guarded by p.mu; nil until dialled
	// loseReply: the next chunk from the server is discarded and the
	// client's connection reset (LinkReplyLost). Guarded by p.mu.
	loseReply bool
}

type chunk struct {
	buf *[]byte
	n   int
	at  time.Time // when it was read
}

func (c *proxyConn) run() {
	defer c.p.wg.Done()
	defer c.teardown()
	if !c.waitPassable() {
		return
	}
	dctx, cancel := context.WithTimeout(c.ctx, proxyDialTimeout)
	up, err := (&net.Dialer{}).DialContext(dctx, "tcp", c.p.upstream)
	cancel()
	if err != nil {
		return // the client sees its connection closed, as with a refused one
	}
	c.p.mu.Lock()
	if c.ctx.Err() != nil { // torn down (cut, Close) while dialling
		c.p.mu.Unlock()
		up.Close()
		return
	}
	c.upstream = up
	c.p.mu.Unlock()

	var wg sync.WaitGroup
	pipe := func(src, dst net.Conn, toClient bool) {
		ch := make(chan chunk, proxyQueue)
		wg.Add(2)
		go func() { defer wg.Done(); c.read(src, ch) }()
		go func() { defer wg.Done(); c.write(dst, ch, toClient) }()
	}
	pipe(c.client, up, false)
	pipe(up, c.client, true)
	wg.Wait()
}

// teardown closes both sockets (which ends blocked reads and writes) and
// forgets the connection. It may be called any number of times.
func (c *proxyConn) teardown() {
	c.cancel()
	c.p.mu.Lock()
	up := c.upstream
	delete(c.p.conns, c)
	c.p.mu.Unlock()
	c.client.Close()
	if up != nil {
		up.Close()
	}
}

// waitPassable waits while the link is blackholed; false once torn down.
func (c *proxyConn) waitPassable() bool {
	for {
		mode, _, changed := c.p.state()
		if mode != LinkBlackhole {
			return c.ctx.Err() == nil
		}
		select {
		case <-changed:
		case <-c.ctx.Done():
			return false
		}
	}
}

// waitDeliver waits until a chunk read at may be written: not while
// blackholed, and with LinkSlow not before at+latency. False once torn down.
func (c *proxyConn) waitDeliver(at time.Time) bool {
	for {
		mode, latency, changed := c.p.state()
		var timer *time.Timer
		var due <-chan time.Time
		switch mode {
		case LinkBlackhole:
			// wait for the next change
		case LinkSlow:
			d := time.Until(at.Add(latency))
			if d <= 0 {
				return c.ctx.Err() == nil
			}
			timer = time.NewTimer(d)
			due = timer.C
		default:
			return c.ctx.Err() == nil
		}
		select {
		case <-due:
			return c.ctx.Err() == nil
		case <-changed:
		case <-c.ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
		if c.ctx.Err() != nil {
			return false
		}
	}
}

// read reads src into out until EOF (then closes out so the writer
// half-closes its side) or an error (then tears the connection down).
func (c *proxyConn) read(src net.Conn, out chan<- chunk) {
	defer close(out)
	for {
		if !c.waitPassable() {
			return
		}
		buf := chunkPool.Get().(*[]byte)
		n, err := src.Read(*buf)
		if n > 0 {
			select {
			case out <- chunk{buf: buf, n: n, at: time.Now()}:
			case <-c.ctx.Done():
				chunkPool.Put(buf)
				return
			}
		} else {
			chunkPool.Put(buf)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.teardown()
			}
			return
		}
	}
}

// dropReply reports whether a chunk from the server must be discarded
// (LinkReplyLost armed on this connection); if so it counts the lost reply
// and resets the client's connection (SO_LINGER 0: an RST, not a FIN).
func (c *proxyConn) dropReply() bool {
	c.p.mu.Lock()
	lose := c.loseReply && c.p.mode == LinkReplyLost
	if lose {
		c.loseReply = false
		c.p.lost++
	}
	c.p.mu.Unlock()
	if !lose {
		return false
	}
	if tc, ok := c.client.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.teardown()
	return true
}

// write delivers the chunks of in to dst, each at its time; when in is
// closed (EOF on the other side) it half-closes dst. toClient marks the
// server-to-client direction, whose replies LinkReplyLost discards.
func (c *proxyConn) write(dst net.Conn, in <-chan chunk, toClient bool) {
	for {
		var ch chunk
		var ok bool
		select {
		case ch, ok = <-in:
		case <-c.ctx.Done():
			return
		}
		if !ok {
			if tc, isTCP := dst.(*net.TCPConn); isTCP {
				_ = tc.CloseWrite()
			}
			return
		}
		if !c.waitDeliver(ch.at) {
			chunkPool.Put(ch.buf)
			return
		}
		if toClient && c.dropReply() {
			chunkPool.Put(ch.buf)
			return
		}
		_, err := dst.Write((*ch.buf)[:ch.n])
		chunkPool.Put(ch.buf)
		if err != nil {
			c.teardown()
			return
		}
	}
}
