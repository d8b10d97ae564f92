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
	mu    sync.RWMutex
	keys  table[RouteKey]
	addrs table[netip.Addr]
}

// NewInterner returns an empty Interner.
func NewInterner() *Interner { return &Interner{} }

// table assigns consecutive ids, from 0, to distinct values.
type table[T comparable] struct {
	ids    map[T]uint32
	values []T
}

func (t *table[T]) find(v T) (uint32, bool) {
	id, ok := t.ids[v]
	return id, ok
}

func (t *table[T]) add(v T) uint32 {
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

// keyID returns the id of k, assigning one if needed.
func (in *Interner) keyID(k RouteKey) uint32 {
	in.mu.RLock()
	id, ok := in.keys.find(k)
	in.mu.RUnlock()
	if ok {
		return id
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.keys.add(k)
}

// findKey returns the id of k if it has one.
func (in *Interner) findKey(k RouteKey) (uint32, bool) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return in.keys.find(k)
}

func (in *Interner) key(id uint32) RouteKey {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return in.keys.values[id]
}

func (in *Interner) addrID(a netip.Addr) uint32 {
	in.mu.RLock()
	id, ok := in.addrs.find(a)
	in.mu.RUnlock()
	if ok {
		return id
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.addrs.add(a)
}

func (in *Interner) addr(id uint32) netip.Addr {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return in.addrs.values[id]
}
