package redistest

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Faults says what a FaultProxy does to the traffic. Each chunk a client
// sends (a command, or a whole pipeline) draws once: with probability
// CutBefore the connection is closed and the chunk never reaches Redis;
// with CutAfter the chunk is forwarded and the connection is closed when
// the reply comes back, so the command ran but its client never learns
// it; with Delay the reply is held back for DelayFor, longer than the
// client waits, before it is forwarded (a stalled server). The client's
// connection handshake (HELLO, AUTH, CLIENT, SELECT) is never faulted, so
// the faults hit commands. The zero value forwards everything untouched.
type Faults struct {
	CutBefore, CutAfter, Delay float64
	DelayFor                   time.Duration
}

// FaultProxy is a TCP proxy on a loopback port between a client and a
// redis-server that injects Faults, for tests of what a stalling or
// breaking Redis does to the data. Redis authentication passes through
// it untouched.
type FaultProxy struct {
	ln     net.Listener
	target string
	faults atomic.Pointer[Faults]
	rnd    *rand.Rand
	rndMu  sync.Mutex
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	// Counts of the faults injected so far.
	CutsBefore, CutsAfter, Delays atomic.Int64
}

// StartFaultProxy starts a proxy to target (host:port of a redis-server
// of the test) that forwards everything until SetFaults says otherwise.
// It is stopped when the test ends.
func StartFaultProxy(t testing.TB, target string, seed uint64) *FaultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: fault proxy: %v", err)
	}
	p := &FaultProxy{ln: ln, target: target, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		conns: map[net.Conn]struct{}{}}
	p.faults.Store(&Faults{})
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's address (host:port), to give the client instead of
// the server's.
func (p *FaultProxy) Addr() string { return p.ln.Addr().String() }

// SetFaults changes the faults for every chunk from now on.
func (p *FaultProxy) SetFaults(f Faults) { p.faults.Store(&f) }

// Close stops the proxy and closes every connection through it.
func (p *FaultProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	_ = p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *FaultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *FaultProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

// draw picks the fault for one chunk: 'b' cut before, 'a' cut after, 'd'
// delay, 0 none.
func (p *FaultProxy) draw() (byte, time.Duration) {
	f := p.faults.Load()
	p.rndMu.Lock()
	x := p.rnd.Float64()
	p.rndMu.Unlock()
	switch {
	case x < f.CutBefore:
		return 'b', 0
	case x < f.CutBefore+f.CutAfter:
		return 'a', 0
	case x < f.CutBefore+f.CutAfter+f.Delay:
		return 'd', f.DelayFor
	}
	return 0, 0
}

func (p *FaultProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(client) {
			return
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

// serve pumps one client connection. A chunk's fault is drawn when it
// arrives; what happens to its reply is queued for the reply pump, which
// reads replies in the order Redis sends them (RESP replies come back in
// request order on one connection).
func (p *FaultProxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	// Each forwarded chunk queues what to do with the next reply bytes.
	type plan struct {
		cut   bool
		delay time.Duration
	}
	plans := make(chan plan, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		var cur *plan
		for {
			n, err := server.Read(buf)
			if n > 0 {
				if cur == nil {
					select {
					case pl := <-plans:
						cur = &pl
					default:
					}
				}
				if cur != nil && cur.cut {
					p.CutsAfter.Add(1)
					_ = client.Close()
					_ = server.Close()
					return
				}
				if cur != nil && cur.delay > 0 {
					p.Delays.Add(1)
					time.Sleep(cur.delay)
				}
				cur = nil // a plan covers the first read of its reply
				if _, werr := client.Write(buf[:n]); werr != nil {
					_ = server.Close()
					return
				}
			}
			if err != nil {
				_ = client.Close()
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			var fault byte
			var d time.Duration
			if !handshake(buf[:n]) {
				fault, d = p.draw()
			}
			switch fault {
			case 'b':
				p.CutsBefore.Add(1)
				_ = client.Close()
				_ = server.Close()
				<-done
				return
			case 'a':
				plans <- plan{cut: true}
			case 'd':
				plans <- plan{delay: d}
			default:
				plans <- plan{}
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = server.Close()
			}
			break
		}
	}
	_ = server.Close()
	<-done
}

// handshake reports whether a chunk starts with a connection set-up
// command: RESP "*<n>\r\n$<len>\r\n<name>".
func handshake(b []byte) bool {
	s := string(b[:min(len(b), 64)])
	for i := 0; i < 2; i++ { // skip the array and the bulk length lines
		j := strings.Index(s, "\r\n")
		if j < 0 {
			return false
		}
		s = s[j+2:]
	}
	for _, name := range []string{"HELLO", "AUTH", "CLIENT", "SELECT"} {
		if len(s) >= len(name) && strings.EqualFold(s[:len(name)], name) {
			return true
		}
	}
	return false
}
