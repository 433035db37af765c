package dns

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"time"
)

// The forwarder's UDP sockets. Opening and closing a socket for every miss
// costs more than the rest of the miss together (socket, connect, epoll
// registration, close), so a socket, connected to one upstream (the kernel
// then drops what comes from any other address), carries several queries
// at once, told apart by their random IDs, and one goroutine reads all
// their replies. To keep the source port a guess for a spoofer (RFC 5452,
// section 9.2), a socket takes at most socketQueries queries and is new
// queries' for at most socketLife; it is closed once its last query is
// answered or given up.

const (
	socketQueries = 100
	socketLife    = 10 * time.Second
)

// udpSocket is one connected socket to an upstream and the queries waiting
// on it.
type udpSocket struct {
	conn   net.Conn
	opened time.Time

	mu      sync.Mutex
	pending map[uint16]*udpWait // by ID
	sent    int
	retired bool // takes no new query; closed when pending is empty
}

// udpWait is a query waiting for its reply.
type udpWait struct {
	query []byte
	// deliver is called once, by whoever takes the query out of
	// pending (the reader with its reply, the timer, a failed socket, a
	// cancel: a failed Write, the caller's context), with the query
	// sent, never under the socket's mu, and maybe before sendUDP
	// returns, on its caller's goroutine. reply is the reader's buffer,
	// good only until deliver returns.
	deliver func(query, reply []byte, err error)
	timer   *time.Timer
	// dropped is why the last reply with this ID was dropped, under the
	// socket's mu.
	dropped error
}

// udpSockets are the sockets of one upstream: the one new queries go to.
type udpSockets struct {
	mu      sync.Mutex
	current *udpSocket
	// gone says the upstream is no longer routed: an exchange that
	// began before opens a socket for its query alone.
	gone bool
}

// sendUDP asks q of u over UDP, and hands deliver the reply that passes
// checkReply, or the error that ended the wait: no reply within timeout,
// an error of the socket. It calls deliver only when it returns no error.
func (f *Forwarder) sendUDP(u *upstream, q *Query, timeout time.Duration, deliver func(query, reply []byte, err error)) (*udpSocket, *udpWait, error) {
	s, w, err := f.openQuery(u, q, timeout, deliver)
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.conn.Write(w.query); err != nil {
		s.cancel(w, err)
	}
	return s, w, nil
}

// openQuery returns the socket for a new query to u, and the query, with
// an ID of its own, among those waiting there: a new socket when the
// current one has done its share, or has failed.
func (f *Forwarder) openQuery(u *upstream, q *Query, timeout time.Duration, deliver func(query, reply []byte, err error)) (*udpSocket, *udpWait, error) {
	u.udp.mu.Lock()
	defer u.udp.mu.Unlock()
	for {
		s := u.udp.current
		if s != nil && time.Since(s.opened) > socketLife {
			s.retire()
			s = nil
		}
		if s == nil {
			conn, err := f.dial(context.Background(), "udp", u.addr.String())
			if err != nil {
				return nil, nil, err
			}
			s = &udpSocket{conn: conn, opened: time.Now(), pending: map[uint16]*udpWait{}}
			u.udp.current = s
			go s.read()
		}
		if w, ok := s.add(u, q, timeout, deliver); ok {
			return s, w, nil
		}
		// It failed (fail closed it) since it became the current one.
		u.udp.current = nil
	}
}

// add puts a query for q among those waiting on s, unless s was retired,
// and gives it timeout to be answered. Under u.udp.mu.
func (s *udpSocket) add(u *upstream, q *Query, timeout time.Duration, deliver func(query, reply []byte, err error)) (*udpWait, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired {
		return nil, false
	}
	id := randomID()
	for s.pending[id] != nil {
		id = randomID()
	}
	w := &udpWait{query: upstreamQuery(id, q), deliver: deliver}
	w.timer = time.AfterFunc(timeout, func() {
		s.cancel(w, fmt.Errorf("no reply in %v: %w", timeout, context.DeadlineExceeded))
	})
	s.pending[id] = w
	// An upstream no longer routed (see udpSockets.drop) keeps no
	// socket: this query's closes after it.
	if s.sent++; s.sent >= socketQueries || u.udp.gone {
		s.retired = true
		u.udp.current = nil
	}
	return w, true
}

// retire takes s out of use: it is closed once no query waits on it.
func (s *udpSocket) retire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retired = true
	s.closeIfIdle()
}

// take removes w from the queries waiting, and says whether it was there
// still: whoever takes it delivers its outcome. Under s.mu.
func (s *udpSocket) take(w *udpWait) bool {
	id := binary.BigEndian.Uint16(w.query)
	if s.pending[id] != w {
		return false
	}
	delete(s.pending, id)
	w.timer.Stop()
	s.closeIfIdle()
	return true
}

// cancel ends the wait for w's reply with err, unless it has ended.
func (s *udpSocket) cancel(w *udpWait, err error) {
	s.mu.Lock()
	taken := s.take(w)
	if taken && w.dropped != nil {
		err = fmt.Errorf("%w (a reply dropped: %w)", err, w.dropped)
	}
	s.mu.Unlock()
	if taken {
		w.deliver(w.query, nil, err)
	}
}

// closeIfIdle closes a retired socket that waits on nothing more. Under
// s.mu.
func (s *udpSocket) closeIfIdle() {
	if s.retired && len(s.pending) == 0 {
		s.conn.Close()
	}
}

// read hands each reply to the query it answers, until the socket is
// closed; a reply that answers no waiting query (checkReply) is dropped.
// An error (the upstream's port unreachable, say) ends every query waiting,
// and the socket.
func (s *udpSocket) read() {
	buf := make([]byte, MaxMessage)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			s.fail(err)
			return
		}
		if n < 2 {
			continue
		}
		s.mu.Lock()
		w := s.pending[binary.BigEndian.Uint16(buf)]
		if w != nil {
			if err := checkReply(w.query, buf[:n]); err != nil {
				w.dropped = err
				w = nil
			} else {
				s.take(w)
			}
		}
		s.mu.Unlock()
		if w != nil {
			w.deliver(w.query, buf[:n], nil)
		}
	}
}

// fail ends the queries waiting on s with err, and s.
func (s *udpSocket) fail(err error) {
	s.mu.Lock()
	var ended []*udpWait
	for _, w := range s.pending {
		ended = append(ended, w)
	}
	for _, w := range ended {
		s.take(w)
	}
	s.retired = true
	s.conn.Close()
	s.mu.Unlock()
	for _, w := range ended {
		w.deliver(w.query, nil, err)
	}
}

// exchangeUDP asks q of u over UDP and waits for a reply that passes
// checkReply; it returns the query it sent too (for TCP, on truncation).
func (f *Forwarder) exchangeUDP(ctx context.Context, u *upstream, q *Query) (query, reply []byte, err error) {
	type result struct {
		reply []byte
		err   error
	}
	done := make(chan result, 1)
	s, w, err := f.sendUDP(u, q, f.timeout, func(_, reply []byte, err error) {
		done <- result{append([]byte(nil), reply...), err}
	})
	if err != nil {
		return nil, nil, err
	}
	select {
	case r := <-done:
		return w.query, r.reply, r.err
	case <-ctx.Done():
		s.cancel(w, ctx.Err())
	}
	r := <-done // cancel's, or the reply's that came first
	return w.query, r.reply, r.err
}

// drop takes the current socket out of use, for good: the upstream is no
// longer routed.
func (us *udpSockets) drop() {
	us.mu.Lock()
	defer us.mu.Unlock()
	us.gone = true
	if us.current != nil {
		us.current.retire()
		us.current = nil
	}
}
