package manager

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClientLimit(t *testing.T) {
	assert.Equal(t, 2, ClientLimit(10, 0), "nobody reaches us: at most 2")
	assert.Equal(t, 1, ClientLimit(1, 0))
	assert.Equal(t, 10, ClientLimit(10, 3))
}

func TestVictim(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ts    []Load
		limit int
		want  uint32
		ok    bool
	}{
		{"below limit", []Load{{ID: 1, Outgoing: true, Routes: 5}}, 2, 0, false},
		{"no route first", []Load{{ID: 1, Outgoing: true, Routes: 5}, {ID: 2, Outgoing: true, Neighbour: true}}, 2, 2, true},
		{"neighbour kept", []Load{{ID: 1, Outgoing: true, Routes: 1, Neighbour: true}, {ID: 2, Outgoing: true, Routes: 9}}, 2, 2, true},
		{"fewest routes", []Load{{ID: 1, Outgoing: true, Routes: 4}, {ID: 2, Outgoing: true, Routes: 3}, {ID: 3, Outgoing: true, Routes: 7}}, 3, 2, true},
		{"incoming and draining ignored", []Load{{ID: 1, Routes: 0}, {ID: 2, Outgoing: true, Draining: true}, {ID: 3, Outgoing: true, Routes: 3}, {ID: 4, Outgoing: true, Routes: 2}}, 2, 4, true},
		{"draining does not count", []Load{{ID: 2, Outgoing: true, Draining: true}, {ID: 3, Outgoing: true, Routes: 3}}, 2, 0, false},
		{"a LAN peer's tunnel first", []Load{{ID: 1, Outgoing: true, Routes: 0}, {ID: 2, Outgoing: true, Routes: 2, OnLAN: true}, {ID: 3, Outgoing: true, Routes: 1}}, 3, 2, true},
		{"a LAN peer's tunnel below the limit", []Load{{ID: 1, Outgoing: true, Routes: 4}, {ID: 2, Outgoing: true, Routes: 2, OnLAN: true}}, 3, 2, true},
		{"an incoming LAN peer's tunnel is not ours to replace", []Load{{ID: 1, Routes: 2, OnLAN: true}, {ID: 2, Outgoing: true, Routes: 2}}, 3, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok := Victim(tc.ts, tc.limit)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, id)
		})
	}
}

func TestOrderPutsNeighboursFirst(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	peers := []string{"a", "b", "c", "d", "e"}
	seen := map[string]bool{}
	for range 50 {
		out := Order(peers, func(p string) bool { return p == "d" }, rnd)
		assert.ElementsMatch(t, peers, out)
		assert.Equal(t, "d", out[0])
		seen[out[1]] = true
	}
	assert.Greater(t, len(seen), 1, "the others are shuffled")
}
