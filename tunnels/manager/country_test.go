package manager

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSameCountryRule(t *testing.T) {
	list := []string{"FR", "DE"}
	for _, c := range []struct {
		ours, theirs string
		allowed      bool
	}{
		{"FR", "FR", true},
		{"FR", "DE", false}, // both listed, but not the same
		{"FR", "", false},   // a listed country only tunnels inside itself
		{"JP", "FR", false}, // nobody tunnels into a listed country
		{"JP", "US", true},
		{"JP", "", true},
		{"", "US", true},
		{"", "DE", false},
	} {
		assert.Equal(t, c.allowed, SameCountry(list, c.ours, c.theirs), "%q → %q", c.ours, c.theirs)
	}
	assert.True(t, SameCountry(nil, "FR", "DE"), "no rule")
}

type countriesFunc func(string) bool

func (f countriesFunc) Allows(country string) bool { return f(country) }

// TestSameCountryChoosesPeers: the manager only tunnels to addresses the
// rule allows; a peer with none is marked tried and skipped.
func TestSameCountryChoosesPeers(t *testing.T) {
	h := newHarness(t, 5, 10)
	h.cfg.Countries = countriesFunc(func(c string) bool { return SameCountry([]string{"FR"}, "FR", c) })
	p2, bits2 := peer(t, 2)
	_, bits3 := peer(t, 3)
	_, bits4 := peer(t, 4)
	require.NoError(t, h.cache.Put(bits2, "198.51.100.2,4326,fou,FR"))
	require.NoError(t, h.cache.Put(bits3, "198.51.100.3,4326,fou,DE"))
	require.NoError(t, h.cache.Put(bits4, "198.51.100.4,4326,fou"))
	h.start()
	for range 3 {
		h.step(5)
		h.idle()
	}
	assert.Equal(t, []netip.Prefix{p2}, h.outgoing())
	assert.True(t, h.cache.tried[bits3])
	assert.True(t, h.cache.tried[bits4])
}
