package dns

import (
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// The cache: upstreams' answers kept in wire form, served with only the
// ID, the question's case, the RD flag and the TTLs rewritten.

// CacheConfig bounds the cache and says how long answers live in it.
type CacheConfig struct {
	// MaxEntries and MaxBytes bound it; the least recently used entry
	// goes first.
	MaxEntries int `cbor:"1,keyasint"`
	MaxBytes   int `cbor:"2,keyasint"`
	// MinTTL and MaxTTL clamp what an upstream's TTLs say.
	MinTTL time.Duration `cbor:"3,keyasint"`
	MaxTTL time.Duration `cbor:"4,keyasint"`
	// MaxNegativeTTL bounds how long a name's absence is kept (RFC 2308
	// recommends at most 3 hours).
	MaxNegativeTTL time.Duration `cbor:"5,keyasint"`
	// ServeStale is how long past expiry an answer may still be served
	// when no upstream answers (RFC 8767); 0 serves nothing stale.
	ServeStale time.Duration `cbor:"6,keyasint"`
	// PrefetchHits is how many hits make an entry worth refreshing before
	// it expires; 0 prefetches nothing.
	PrefetchHits int `cbor:"7,keyasint"`
}

// Defaults of the cache.
const (
	DefaultCacheEntries   = 10000
	DefaultCacheBytes     = 16 << 20
	DefaultMaxTTL         = 24 * time.Hour
	DefaultMaxNegativeTTL = time.Hour
	DefaultServeStale     = 24 * time.Hour
	DefaultPrefetchHits   = 3
	// staleTTL is the TTL of a stale answer (RFC 8767, section 4).
	staleTTL = 30
	// entryOverhead is what an entry costs besides its message: the
	// struct, its list element, its map slot and its key.
	entryOverhead = 200
)

// Cache is safe for concurrent use.
type Cache struct {
	cfg CacheConfig

	mu      sync.Mutex
	entries map[string]*list.Element
	lru     list.List // of *entry, most recent first
	bytes   int
}

type entry struct {
	key     string
	msg     []byte // without OPT, ID 0
	ttls    []ttlPatch
	stored  time.Time
	ttl     time.Duration // of the whole answer, clamped
	hits    int
	fetched bool // a prefetch of it is under way
}

// ttlPatch is a TTL of the stored message and the value it started at.
type ttlPatch struct {
	at  int
	ttl uint32
}

// NewCache returns an empty cache; zero fields of cfg take the defaults.
func NewCache(cfg CacheConfig) *Cache {
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultCacheEntries
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultCacheBytes
	}
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = DefaultMaxTTL
	}
	if cfg.MaxNegativeTTL == 0 {
		cfg.MaxNegativeTTL = DefaultMaxNegativeTTL
	}
	return &Cache{cfg: cfg, entries: map[string]*list.Element{}}
}

// CacheKey is the key of a question: its name in wire form with ASCII
// letters in lower case, its type and its class.
func CacheKey(dst []byte, qname []byte, qtype, qclass uint16) []byte {
	for _, c := range qname {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(qtype)<<16|uint32(qclass))
}

// errUncacheable says why an answer is not kept; it is not a fault.
var errUncacheable = errors.New("dns: not cacheable")

// Store keeps an upstream's answer to a question, checked already against
// the question it answers (ID, name, type, class): Prepare, then Insert.
func (c *Cache) Store(msg []byte, now time.Time) error {
	a, err := c.Prepare(msg, now)
	if err != nil {
		return err
	}
	return c.Insert(a)
}

// Prepared is an upstream's answer made ready to serve, and to keep when
// it may be kept.
type Prepared struct {
	e          entry
	uncachable error
}

// Prepare makes an upstream's answer ready to serve. It returns an error
// for a malformed answer, which is not to be served; one the cache does
// not keep is still served, and Insert says why it is not kept (an error
// wrapping errUncacheable).
//
// The answer is written again by the recoder (recode.go), without its
// OPT record: what the cache serves is then well-formed whatever the
// upstream sent (no compression pointer into bytes that are gone, nor into
// a TTL that the countdown rewrites). That costs a miss, never a hit.
// (Keeping the upstream's bytes as they came was tried: FuzzDNSCache's
// kept seed d2c27cd9 points a name into a TTL.)
func (c *Cache) Prepare(msg []byte, now time.Time) (*Prepared, error) {
	if len(msg) < headerLen {
		return nil, fmt.Errorf("dns: answer of %d bytes: shorter than a header", len(msg))
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	switch {
	case flags&flagQR == 0:
		return nil, errors.New("dns: answer: a query, not an answer")
	case flags>>11&0xf != 0:
		return nil, fmt.Errorf("dns: answer: opcode %d", flags>>11&0xf)
	}
	r, err := recode(msg)
	if err != nil {
		return nil, fmt.Errorf("dns: answer: %w", err)
	}
	var uncachable error
	if r.signed {
		uncachable = fmt.Errorf("%w: signed with TSIG or SIG(0)", errUncacheable)
	}
	rcode := int(flags & 0xf)
	negative := rcode == RcodeNXDomain || r.answers == 0
	var ttl time.Duration
	switch {
	case flags&flagTC != 0:
		uncachable = fmt.Errorf("%w: truncated", errUncacheable)
	case rcode != 0 && rcode != RcodeNXDomain:
		uncachable = fmt.Errorf("%w: rcode %d", errUncacheable, rcode)
	case negative:
		// RFC 2308, section 5: the lesser of the SOA's TTL and its
		// MINIMUM field; no SOA, no negative caching.
		if !r.haveSOA {
			uncachable = fmt.Errorf("%w: a negative answer without SOA", errUncacheable)
			break
		}
		ttl = min(max(time.Duration(min(r.soaTTL, r.soaMin))*time.Second, c.cfg.MinTTL), c.cfg.MaxNegativeTTL)
	default:
		least := r.rrs[0].ttl
		for _, rr := range r.rrs[:r.answers] {
			least = min(least, rr.ttl)
		}
		ttl = c.clamp(least)
	}
	if uncachable == nil && ttl < time.Second {
		uncachable = fmt.Errorf("%w: TTL 0", errUncacheable)
	}
	p := &Prepared{e: entry{key: string(r.question.Key(nil)), msg: r.msg, stored: now, ttl: ttl, ttls: make([]ttlPatch, 0, len(r.rrs))}, uncachable: uncachable}
	for _, rr := range r.rrs {
		t := rr.ttl // served as it came, when not kept
		switch {
		case uncachable != nil:
		case negative:
			t = uint32(ttl / time.Second)
		default:
			t = uint32(c.clamp(rr.ttl) / time.Second)
		}
		p.e.ttls = append(p.e.ttls, ttlPatch{at: rr.ttlAt, ttl: t})
	}
	return p, nil
}

// Insert keeps a prepared answer, in place of the one the cache held for
// its question; it returns an error wrapping errUncacheable, and keeps
// nothing, for an answer that may not be kept.
func (c *Cache) Insert(p *Prepared) error {
	if p.uncachable != nil {
		return p.uncachable
	}
	e := new(entry)
	*e = p.e
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[e.key]; ok {
		c.remove(old)
	}
	c.entries[e.key] = c.lru.PushFront(e)
	c.bytes += e.cost()
	c.evict()
	return nil
}

// Write writes a prepared answer to the query msg, accepted as q, as
// Answer writes a cached one.
func (p *Prepared) Write(dst, msg []byte, q *Query, limit int) []byte {
	return write(dst, p.e.msg, p.e.ttls, msg, q, 0, false, limit)
}

// clamp bounds a TTL of a positive answer by the floor and the ceiling.
func (c *Cache) clamp(ttl uint32) time.Duration {
	return min(max(time.Duration(ttl)*time.Second, c.cfg.MinTTL), c.cfg.MaxTTL)
}

func (e *entry) cost() int { return len(e.msg) + len(e.key) + 8*len(e.ttls) + entryOverhead }

func (c *Cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.entries, e.key)
	c.bytes -= e.cost()
}

// evict brings the cache within its bounds, the least recently used first.
func (c *Cache) evict() {
	for c.lru.Len() > c.cfg.MaxEntries || c.bytes > c.cfg.MaxBytes {
		c.remove(c.lru.Back())
	}
}

// Len and Bytes say how many entries the cache holds and what they cost.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Bytes is what the entries cost, as the bound counts it.
func (c *Cache) Bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Hit is what a lookup found.
type Hit int

const (
	// Miss: nothing to serve; ask an upstream.
	Miss Hit = iota
	// Fresh: served from the cache.
	Fresh
	// FreshPrefetch: served, and worth refreshing from an upstream now.
	FreshPrefetch
	// Stale: expired, served only because stale answers were asked for.
	Stale
)

// Answer writes the cached answer to the query msg, accepted as q, into
// dst and returns it, with the ID, the question's bytes and RD of the
// query, the TTLs counted down, and an OPT record when the query had one.
// What does not fit in limit bytes is cut, and TC set. With stale, an
// expired answer within the serve-stale window is served, its TTLs set
// to 30 s. key is q's key (q.Key), which the caller may keep in a buffer
// of its own.
func (c *Cache) Answer(dst, msg []byte, q *Query, key []byte, now time.Time, stale bool, limit int) ([]byte, Hit) {
	c.mu.Lock()
	el, ok := c.entries[string(key)]
	if !ok {
		c.mu.Unlock()
		return dst, Miss
	}
	e := el.Value.(*entry)
	age := now.Sub(e.stored)
	hit := Fresh
	switch {
	case age >= e.ttl+c.cfg.ServeStale:
		c.remove(el)
		c.mu.Unlock()
		return dst, Miss
	case age >= e.ttl && !stale:
		c.mu.Unlock()
		return dst, Miss
	case age >= e.ttl:
		hit = Stale
	}
	c.lru.MoveToFront(el)
	e.hits++
	if hit == Fresh && c.cfg.PrefetchHits > 0 && e.hits >= c.cfg.PrefetchHits && !e.fetched && e.ttl-age < e.ttl/10 {
		e.fetched, hit = true, FreshPrefetch
	}
	// Taken under the lock: e.msg and e.ttls are never written after
	// Insert, but the entry may go any time after.
	stored, ttls := e.msg, e.ttls
	c.mu.Unlock()
	return write(dst, stored, ttls, msg, q, age, hit == Stale, limit), hit
}

// write appends to dst a stored answer to the query msg, accepted as q:
// its ID, question bytes and RD those of the query, the TTLs counted down
// by age (30 s when stale), an OPT record when the query had one, and
// what does not fit in limit bytes cut, TC set.
func write(dst, stored []byte, ttls []ttlPatch, msg []byte, q *Query, age time.Duration, stale bool, limit int) []byte {
	questionEnd := q.End
	start := len(dst)
	dst = append(dst, stored...)
	out := dst[start:]
	// The query's ID, and its question as the client wrote it (the same
	// name, so the same length: 0x20 case and all).
	copy(out[0:2], msg[0:2])
	copy(out[headerLen:questionEnd], msg[headerLen:questionEnd])
	flags := binary.BigEndian.Uint16(out[2:])&^flagRD | binary.BigEndian.Uint16(msg[2:])&flagRD
	binary.BigEndian.PutUint16(out[2:], flags)
	elapsed := uint32(age / time.Second)
	for _, p := range ttls {
		t := uint32(staleTTL)
		if !stale {
			t = p.ttl - min(p.ttl, elapsed)
		}
		binary.BigEndian.PutUint32(out[p.at:], t)
	}
	optLen := 0
	if q.EDNS {
		optLen = 11
	}
	if len(out)+optLen > limit {
		// Only the header and the question: the client asks again over
		// TCP.
		dst = dst[:start+questionEnd]
		out = dst[start:]
		binary.BigEndian.PutUint16(out[2:], flags|flagTC)
		clear(out[6:12])
	}
	if q.EDNS {
		dst = appendOPT(dst, ourUDPSize)
		out = dst[start:]
		binary.BigEndian.PutUint16(out[10:], binary.BigEndian.Uint16(out[10:])+1)
	}
	return dst
}

// PrefetchFailed clears an entry's prefetch mark when the refresh failed, so
// that a later hit tries again.
func (c *Cache) PrefetchFailed(key []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[string(key)]; ok {
		el.Value.(*entry).fetched = false
	}
}

// ourUDPSize is the EDNS buffer the stub offers its clients: 1232 bytes,
// which no IPv6 path fragments (DNS flag day 2020).
const ourUDPSize = 1232

// appendOPT appends an OPT record (RFC 6891) offering udpSize bytes, no
// extended RCODE, no flags, no option.
func appendOPT(dst []byte, udpSize uint16) []byte {
	dst = append(dst, 0, 0, typeOPT)
	dst = binary.BigEndian.AppendUint16(dst, udpSize)
	return append(dst, 0, 0, 0, 0, 0, 0)
}
