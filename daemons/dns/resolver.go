package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// The resolver: what the stub does with one query. A name of the local
// records (hosts, static) is answered from them, never forwarded; a hit is
// answered at once from the cache; a miss asks an upstream, once for all the clients
// who ask the same question meanwhile; when no upstream answers, an
// expired answer is served if the cache still holds one (RFC 8767), and
// SERVFAIL otherwise.

// Resolver is safe for concurrent use.
type Resolver struct {
	cache *Cache
	fwd   *Forwarder
	log   *slog.Logger
	// Now is the clock; time.Now unless a test sets it.
	Now func() time.Time
	// ExchangeTimeout bounds a miss, all upstreams tried.
	ExchangeTimeout time.Duration

	local atomic.Pointer[Local]

	mu       sync.Mutex
	inflight map[string]*flight

	stats Stats
}

// Stats counts what the resolver did.
type Stats struct {
	Queries, Local, Hits, Misses, Stale, Prefetches, ServFail, Refused, Dropped atomic.Uint64
}

// flight is one upstream exchange that clients wait on: those that block
// on done, and those that asked to be called (then, under the
// Resolver's mu).
type flight struct {
	done chan struct{}
	then []func(*Prepared, error)
	p    *Prepared
	err  error
}

// NewResolver returns a resolver over a cache and a forwarder.
func NewResolver(cache *Cache, fwd *Forwarder, log *slog.Logger) *Resolver {
	return &Resolver{cache: cache, fwd: fwd, log: log, Now: time.Now, ExchangeTimeout: 5 * time.Second, inflight: map[string]*flight{}}
}

// SetLocal replaces the local records (nil for none).
func (r *Resolver) SetLocal(l *Local) { r.local.Store(l) }

// Stats returns the resolver's counters.
func (r *Resolver) Stats() *Stats { return &r.stats }

// maxKey holds a key: a name of 255 bytes, its type and class.
const maxKey = 255 + 4

// answerCached answers msg from the cache, or says it cannot: ok is false
// for a miss, which then waits on an upstream, and q is the query
// accepted. A query that gets no answer at all gives ok and dst
// unchanged; an error answer (FORMERR and the like) is written too. tcp
// says the answer goes over TCP, where its size is not bounded by the
// query's.
func (r *Resolver) answerCached(dst, msg []byte, tcp bool) (out []byte, q Query, ok bool) {
	q, err := ParseQuery(msg)
	if err != nil {
		return r.refuse(dst, msg, &q, err), q, true
	}
	if out, ok := r.local.Load().Answer(dst, msg, &q, limit(&q, tcp)); ok {
		r.stats.Local.Add(1)
		return out, q, true
	}
	var kb [maxKey]byte
	key := q.Key(kb[:0])
	out, hit := r.cache.Answer(dst, msg, &q, key, r.Now(), false, limit(&q, tcp))
	switch hit {
	case Miss:
		return dst, q, false
	case FreshPrefetch:
		r.stats.Prefetches.Add(1)
		// Copied now: msg is the caller's buffer, soon reused.
		own := append([]byte(nil), msg...)
		pq := q
		pq.Name = own[headerLen : q.End-4]
		go r.prefetch(pq, string(key))
	}
	r.stats.Hits.Add(1)
	return out, q, true
}

// Answer answers msg whatever it takes: the cache, an upstream, a stale
// answer, or SERVFAIL. It returns dst unchanged for a query that gets no
// answer at all.
func (r *Resolver) Answer(ctx context.Context, dst, msg []byte, tcp bool) []byte {
	r.stats.Queries.Add(1)
	return r.answer(ctx, dst, msg, tcp)
}

func (r *Resolver) answer(ctx context.Context, dst, msg []byte, tcp bool) []byte {
	out, q, ok := r.answerCached(dst, msg, tcp)
	if ok {
		return out
	}
	r.stats.Misses.Add(1)
	var kb [maxKey]byte
	key := string(q.Key(kb[:0]))
	p, err := r.resolve(ctx, key, &q)
	return r.answerResolved(dst, msg, &q, key, p, err, tcp)
}

// answerResolved answers msg, a miss, with what resolving it came to: the
// answer, or else a stale one, or else SERVFAIL.
func (r *Resolver) answerResolved(dst, msg []byte, q *Query, key string, p *Prepared, err error, tcp bool) []byte {
	if err == nil {
		return p.Write(dst, msg, q, limit(q, tcp))
	}
	if out, hit := r.cache.Answer(dst, msg, q, []byte(key), r.Now(), true, limit(q, tcp)); hit == Stale {
		r.stats.Stale.Add(1)
		return out
	}
	r.log.Debug("no answer", "name", string(q.Name), "type", q.Type, "err", err.Error())
	r.stats.ServFail.Add(1)
	return errorAnswer(dst, msg, q, RcodeServFail)
}

// join returns the flight for key, and whether it is a new one that the
// caller is to carry out; then, when not nil, is called once it lands.
func (r *Resolver) join(key string, then func(*Prepared, error)) (f *flight, lead bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.inflight[key]
	if !ok {
		f = &flight{done: make(chan struct{})}
		r.inflight[key] = f
	}
	if then != nil {
		f.then = append(f.then, then)
	}
	return f, !ok
}

// resolve asks an upstream the question of q, or waits for the exchange
// already under way for the same question, and keeps what may be kept.
func (r *Resolver) resolve(ctx context.Context, key string, q *Query) (*Prepared, error) {
	f, lead := r.join(key, nil)
	if !lead {
		select {
		case <-f.done:
			return f.p, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	// Not the client's context: those waiting on this exchange must not
	// lose it because the first client went away.
	xctx, cancel := context.WithTimeout(context.Background(), r.ExchangeTimeout)
	defer cancel()
	reply, err := r.fwd.Exchange(xctx, q)
	r.land(key, f, reply, err)
	return f.p, f.err
}

// resolveAsync is resolve that does not wait: it calls then with what
// resolve would return, on the goroutine that lands the exchange (often
// the one reading the upstream's socket, or a client's that waits) or on
// the caller's; then should not block. q must stay as it is until then.
func (r *Resolver) resolveAsync(key string, q *Query, then func(*Prepared, error)) {
	f, lead := r.join(key, then)
	if !lead {
		return
	}
	r.fwd.ExchangeAsync(q, time.Now().Add(r.ExchangeTimeout), func(reply []byte, err error) {
		r.land(key, f, reply, err)
	})
}

// land ends flight f with an upstream's reply, or the error that stood
// for one: it keeps what may be kept, and hands it to all who wait.
func (r *Resolver) land(key string, f *flight, reply []byte, err error) {
	if err == nil {
		f.p, err = r.cache.Prepare(reply, r.Now())
		if err == nil {
			if ierr := r.cache.Insert(f.p); ierr != nil && !errors.Is(ierr, errUncacheable) {
				r.log.Warn("an upstream's answer not kept", "err", ierr.Error())
			}
		} else {
			r.log.Warn("an upstream's answer refused", "err", err.Error())
		}
	}
	f.err = err
	r.mu.Lock()
	delete(r.inflight, key)
	then := f.then
	f.then = nil
	r.mu.Unlock()
	close(f.done)
	for _, t := range then {
		t(f.p, f.err)
	}
}

// prefetch refreshes a popular entry before it expires.
func (r *Resolver) prefetch(q Query, key string) {
	if _, err := r.resolve(context.Background(), key, &q); err != nil {
		r.cache.PrefetchFailed([]byte(key))
	}
}

// limit is how large an answer the client takes.
func limit(q *Query, tcp bool) int {
	if tcp {
		return MaxMessage
	}
	return int(min(q.UDPSize, ourUDPSize))
}

// refuse answers a query the stub does not serve: with the RCODE of a
// Refusal, or not at all.
func (r *Resolver) refuse(dst, msg []byte, q *Query, err error) []byte {
	var ref *Refusal
	if !errors.As(err, &ref) {
		r.stats.Dropped.Add(1)
		return dst
	}
	r.stats.Refused.Add(1)
	return errorAnswer(dst, msg, q, ref.Rcode)
}

// errorAnswer is an answer with rcode and no record: the query's header
// (ID, opcode, RD), its question when it has a readable one, and an OPT
// record when it had one (which carries the upper bits of BADVERS).
func errorAnswer(dst, msg []byte, q *Query, rcode int) []byte {
	start := len(dst)
	flags := binary.BigEndian.Uint16(msg[2:])&(0xf<<11|flagRD) | flagQR | flagRA | uint16(rcode&0xf)
	dst = binary.BigEndian.AppendUint16(dst, q.ID)
	dst = binary.BigEndian.AppendUint16(dst, flags)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	if q.End > 0 {
		dst = append(dst, msg[headerLen:q.End]...)
		dst[start+5] = 1
	}
	if q.EDNS {
		dst = appendOPT(dst, ourUDPSize)
		dst[len(dst)-6] = byte(rcode >> 4) // the OPT's extended RCODE
		dst[start+11] = 1
	}
	return dst
}
