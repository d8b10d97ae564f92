package node

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/re6st-bpf/re6st-bpf/tunnels/manager"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// countryState is our country: --country, else the registry's GeoIP
// answer for our first advertised address (re6st's getCountry), asked
// until it answers.
type countryState struct {
	mu      sync.Mutex
	code    string
	asked   time.Time
	learned bool
}

// countryRetry is how often an unanswered getCountry is asked again.
const countryRetry = 10 * time.Minute

func (n *Node) ourCountry() string {
	if n.cfg.Country != "" {
		return n.cfg.Country
	}
	n.country.mu.Lock()
	defer n.country.mu.Unlock()
	return n.country.code
}

// learnCountry asks the registry our country when --country is not given
// and the network has a same_country rule (the only use of it).
func (n *Node) learnCountry(ctx context.Context) {
	c := &n.country
	c.mu.Lock()
	due := n.cfg.Country == "" && !c.learned && time.Since(c.asked) >= countryRetry && len(n.params.get().SameCountry) > 0
	if due {
		c.asked = time.Now()
	}
	c.mu.Unlock()
	if !due {
		return
	}
	addrs := n.advertised()
	if len(addrs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	code, err := n.session.Country(ctx, addrs[0].IP.String())
	n.registry.note(err)
	if err != nil {
		n.log.Debug().Err(err).Msg("getCountry")
		return
	}
	c.mu.Lock()
	c.code, c.learned = strings.ToUpper(code), true
	c.mu.Unlock()
	n.log.Info().Str("country", c.code).Msg("country from the registry's GeoIP")
}

// withCountry puts our country on the addresses we advertise.
func (n *Node) withCountry(addrs []nodeproto.Address) []nodeproto.Address {
	if country := n.ourCountry(); country != "" {
		for i := range addrs {
			addrs[i].Country = country
		}
	}
	return addrs
}

// countries applies the network's current same_country rule for the
// tunnel manager.
type countries Node

func (c *countries) Allows(theirs string) bool {
	n := (*Node)(c)
	return manager.SameCountry(n.params.get().SameCountry, n.ourCountry(), strings.ToUpper(theirs))
}
