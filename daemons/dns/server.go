package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// The stub's listeners: UDP and TCP on the sockets it was given. Over UDP,
// a hit is answered on the reading goroutine, and a miss by whichever
// goroutine the upstream's reply lands on (Resolver.resolveAsync), so that
// an upstream's delay holds up no other client; over TCP, each connection
// has a goroutine. Every loop is bounded by the context, the misses by
// maxPending and the connections by maxTCPConns.

const (
	// maxPending bounds the misses waiting on upstreams at once, over UDP;
	// past it a miss gets SERVFAIL at once.
	maxPending = 1024
	// maxTCPConns bounds the TCP connections open at once.
	maxTCPConns = 256
	// tcpIdle is how long a TCP connection may sit idle (RFC 7766 says
	// seconds, not minutes).
	tcpIdle = 10 * time.Second
)

// ServeUDP answers the queries that reach conn until ctx is done or conn
// fails. A miss still waiting on an upstream when ctx is done gets no
// answer.
func (r *Resolver) ServeUDP(ctx context.Context, conn *net.UDPConn) error {
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	pending := make(chan struct{}, maxPending)
	buf := make([]byte, MaxMessage)
	out := make([]byte, 0, MaxMessage)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if end, err := endOfLoop(ctx, err); end {
				return err
			}
			continue
		}
		r.stats.Queries.Add(1)
		answer, q, ok := r.answerCached(out[:0], buf[:n], false)
		if ok {
			if len(answer) > 0 {
				conn.WriteToUDPAddrPort(answer, from)
			}
			continue
		}
		select {
		case pending <- struct{}{}:
		default:
			// Too many misses waiting: SERVFAIL now, not a queue.
			r.stats.ServFail.Add(1)
			conn.WriteToUDPAddrPort(errorAnswer(out[:0], buf[:n], &q, RcodeServFail), from)
			continue
		}
		r.stats.Misses.Add(1)
		r.askUDP(ctx, conn, buf[:n], q, from, func() { <-pending })
	}
}

// askUDP asks an upstream the query msg, accepted as q, that a UDP
// client at from missed in the cache, and answers the client when the
// upstream does, on whichever goroutine that is; release is called then.
// q is a copy of ServeUDP's: the callback keeps it, and a hit's stays on
// the stack.
func (r *Resolver) askUDP(ctx context.Context, conn *net.UDPConn, msg []byte, q Query, from netip.AddrPort, release func()) {
	// Copied: msg is ServeUDP's buffer, read into again at once.
	msg = append([]byte(nil), msg...)
	q.Name = msg[headerLen : q.End-4]
	var kb [maxKey]byte
	key := string(q.Key(kb[:0]))
	r.resolveAsync(key, &q, func(p *Prepared, err error) {
		defer release()
		if ctx.Err() == nil {
			conn.WriteToUDPAddrPort(r.answerResolved(nil, msg, &q, key, p, err, false), from)
		}
	})
}

// ServeTCP answers queries on the connections ln accepts, each query
// framed by its length (RFC 1035, section 4.2.2), several per connection
// and answered in turn, until ctx is done or ln fails.
func (r *Resolver) ServeTCP(ctx context.Context, ln *net.TCPListener) error {
	stop := context.AfterFunc(ctx, func() { ln.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conns := make(chan struct{}, maxTCPConns)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if end, err := endOfLoop(ctx, err); end {
				return err
			}
			continue
		}
		select {
		case conns <- struct{}{}:
		default:
			c.Close() // too many: the client tries again, or UDP
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-conns }()
			r.serveConn(ctx, c)
		}()
	}
}

// endOfLoop says whether a listener's loop ends after err, and with what
// error: it goes on after a timeout, and ends quietly once ctx is done.
func endOfLoop(ctx context.Context, err error) (bool, error) {
	if ctx.Err() != nil {
		return true, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, nil
	}
	return true, err
}

func (r *Resolver) serveConn(ctx context.Context, c *net.TCPConn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var size [2]byte
	msg := make([]byte, MaxMessage)
	out := make([]byte, 2, 2+MaxMessage)
	for {
		c.SetDeadline(time.Now().Add(tcpIdle))
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, msg[:n]); err != nil {
			return
		}
		answer := r.Answer(ctx, out[:2], msg[:n], true)
		if len(answer) == 2 {
			return // nothing to answer: the stream is not DNS
		}
		binary.BigEndian.PutUint16(answer, uint16(len(answer)-2))
		if _, err := c.Write(answer); err != nil {
			return
		}
	}
}
