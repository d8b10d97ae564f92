package babel

import (
	"net/netip"
	"sync"
)

// Interner numbers route keys and next-hop addresses, so that routing
// tables hold small integers instead of 64-octet keys and 24-octet
// addresses. Routers of one process may share one (a simulation of
// thousands of routers stores every prefix once); by default each router
// has its own. Entries are never removed: an Interner grows with the
// number of distinct prefixes and next hops ever seen. It is safe for
// concurrent use.
type Interner struct {
	keys  table[RouteKey]
	addrs table[netip.Addr]
}

// NewInterner returns an empty Interner.
func NewInterner() *Interner { return &Interner{} }

func (in *Interner) keyID(k RouteKey) uint32           { return in.keys.id(k) }
func (in *Interner) findKey(k RouteKey) (uint32, bool) { return in.keys.find(k) }
func (in *Interner) key(id uint32) RouteKey            { return in.keys.value(id) }
func (in *Interner) addrID(a netip.Addr) uint32        { return in.addrs.id(a) }
func (in *Interner) addr(id uint32) netip.Addr         { return in.addrs.value(id) }

// table assigns consecutive ids, from 0, to distinct values.
type table[T comparable] struct {
	mu     sync.RWMutex
	ids    map[T]uint32
	values []T
}

// find returns the id of v if it has one.
func (t *table[T]) find(v T) (uint32, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	id, ok := t.ids[v]
	return id, ok
}

// id returns the id of v, assigning one if needed.
func (t *table[T]) id(v T) uint32 {
	if id, ok := t.find(v); ok {
		return id
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.ids[v]; ok {
		return id
	}
	if t.ids == nil {
		t.ids = make(map[T]uint32)
	}
	id := uint32(len(t.values))
	t.ids[v] = id
	t.values = append(t.values, v)
	return id
}

func (t *table[T]) value(id uint32) T {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.values[id]
}
