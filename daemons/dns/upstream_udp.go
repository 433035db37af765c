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
	query  []byte
	result chan udpResult // one, with the checked reply or an error
	// dropped is why the last reply with this ID was dropped, under the
	// socket's mu.
	dropped error
}

type udpResult struct {
	reply []byte
	err   error
}

// udpSockets are the sockets of one upstream: the one new queries go to.
type udpSockets struct {
	mu      sync.Mutex
	current *udpSocket
	// gone says the upstream is no longer routed: an exchange that
	// began before opens a socket for its query alone.
	gone bool
}

// openQuery returns the socket for a new query to u, and the query, with
// an ID of its own, among those waiting there: a new socket when the
// current one has done its share, or has failed.
func (f *Forwarder) openQuery(ctx context.Context, u *upstream, q *Query) (*udpSocket, *udpWait, error) {
	u.udp.mu.Lock()
	defer u.udp.mu.Unlock()
	for {
		s := u.udp.current
		if s != nil && time.Since(s.opened) > socketLife {
			s.retire()
			s = nil
		}
		if s == nil {
			conn, err := f.dial(ctx, "udp", u.addr.String())
			if err != nil {
				return nil, nil, err
			}
			s = &udpSocket{conn: conn, opened: time.Now(), pending: map[uint16]*udpWait{}}
			u.udp.current = s
			go s.read()
		}
		if w, ok := s.add(u, q); ok {
			return s, w, nil
		}
		// It failed (fail closed it) since it became the current one.
		u.udp.current = nil
	}
}

// add puts a query for q among those waiting on s, unless s was retired.
// Under u.udp.mu.
func (s *udpSocket) add(u *upstream, q *Query) (*udpWait, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired {
		return nil, false
	}
	id := randomID()
	for s.pending[id] != nil {
		id = randomID()
	}
	w := &udpWait{query: upstreamQuery(id, q), result: make(chan udpResult, 1)}
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

// done removes a query answered or given up.
func (s *udpSocket) done(w *udpWait) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := binary.BigEndian.Uint16(w.query)
	if s.pending[id] == w {
		delete(s.pending, id)
	}
	s.closeIfIdle()
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
		id := binary.BigEndian.Uint16(buf)
		if w := s.pending[id]; w != nil {
			if err := checkReply(w.query, buf[:n]); err != nil {
				w.dropped = err
			} else {
				delete(s.pending, id)
				w.result <- udpResult{reply: append([]byte(nil), buf[:n]...)}
			}
		}
		s.mu.Unlock()
	}
}

// fail ends the queries waiting on s with err, and s.
func (s *udpSocket) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, w := range s.pending {
		w.result <- udpResult{err: err}
		delete(s.pending, id)
	}
	s.retired = true
	s.conn.Close()
}

// exchangeUDP asks q of u over UDP and waits for a reply that passes
// checkReply; it returns the query it sent too (for TCP, on truncation).
func (f *Forwarder) exchangeUDP(ctx context.Context, u *upstream, q *Query) (query, reply []byte, err error) {
	s, w, err := f.openQuery(ctx, u, q)
	if err != nil {
		return nil, nil, err
	}
	defer s.done(w)
	if _, err := s.conn.Write(w.query); err != nil {
		return w.query, nil, err
	}
	// A timer, not a context of its own: a miss is cheaper without one.
	timeout := time.NewTimer(f.timeout)
	defer timeout.Stop()
	select {
	case r := <-w.result:
		return w.query, r.reply, r.err
	case <-timeout.C:
		err = fmt.Errorf("no reply in %v: %w", f.timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.mu.Lock()
	dropped := w.dropped
	s.mu.Unlock()
	if dropped != nil {
		return w.query, nil, fmt.Errorf("%w (a reply dropped: %w)", err, dropped)
	}
	return w.query, nil, err
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
