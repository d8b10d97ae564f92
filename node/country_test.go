package node

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// The node applies the network's current same_country rule with its
// --country, and advertises that country with its addresses.
func TestCountries(t *testing.T) {
	n := &Node{cfg: &Config{Country: "FR"}, params: &netParams{}}
	n.params.p.Store(&netparams.Params{})
	c := (*countries)(n)
	assert.True(t, c.Allows("DE"), "no rule")
	n.params.p.Store(&netparams.Params{SameCountry: []string{"FR"}})
	assert.True(t, c.Allows("fr"))
	assert.False(t, c.Allows("DE"))
	assert.False(t, c.Allows(""))
	n.cfg.Country = "JP"
	assert.False(t, c.Allows("FR"))
	assert.True(t, c.Allows("DE"))

	addrs := n.withCountry([]nodeproto.Address{{Proto: nodeproto.ProtoFOU}})
	assert.Equal(t, "JP", addrs[0].Country)
	assert.True(t, strings.HasSuffix(addrs[0].String(), ",fou,JP"), addrs[0].String())
}
