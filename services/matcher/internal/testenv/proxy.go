package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy in front of a server (the shared test Redis), which a test can
// cut and restore to simulate the server going down and coming back on the same
// address, without disturbing other tests that use the server directly.
type Proxy struct {
	t      testing.TB
	target string
	addr   string

	mu    sync.Mutex
	lis   net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy starts a proxy to target on a random local port; it is closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: proxy listen: %v", err)
	}
	p.addr = lis.Addr().String()
	p.serve(lis)
	t.Cleanup(func() {
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's address (stable across Cut and Restore).
func (p *Proxy) Addr() string { return p.addr }

func (p *Proxy) serve(lis net.Listener) {
	p.mu.Lock()
	p.lis = lis
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			if p.lis != lis { // cut meanwhile
				p.mu.Unlock()
				_ = c.Close()
				_ = up.Close()
				return
			}
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(c, up)
			go p.pipe(up, c)
		}
	}()
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Cut closes the listener and every connection: clients see the server go away, and new
// connections are refused.
func (p *Proxy) Cut() {
	p.mu.Lock()
	lis := p.lis
	p.lis = nil
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	if lis != nil {
		_ = lis.Close()
	}
	for c := range conns {
		_ = c.Close()
	}
}

// Restore listens on the same address again.
func (p *Proxy) Restore() {
	p.t.Helper()
	var lis net.Listener
	var err error
	for range 50 { // the port may linger briefly after Cut
		if lis, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("testenv: proxy restore on %s: %v", p.addr, err)
	}
	p.serve(lis)
}
