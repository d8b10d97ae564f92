package internet

import (
	"fmt"
	"strings"
)

// What a firewall drops: nftables expressions of the forward path.
const (
	DropUDP = "meta l4proto udp"
	DropGRE = "ip protocol gre"
)

// Firewall puts an nftables table, fw, in the forward path of router (an
// ISP, a site or Core), that drops the IPv4 packets each of drop matches
// (DropUDP, DropGRE or any nftables expression): a path that blocks some
// tunnel types. RemoveFirewall takes it away.
func (in *Internet) Firewall(router string, drop ...string) error {
	ns := in.ns[router]
	if ns == nil {
		return fmt.Errorf("internet: no router %s", router)
	}
	rules := []string{"add table ip fw", "add chain ip fw forward { type filter hook forward priority 0; }"}
	for _, d := range drop {
		rules = append(rules, "add rule ip fw forward "+d+" drop")
	}
	if out, err := ns.Run("nft", strings.Join(rules, "; ")); err != nil {
		return fmt.Errorf("internet: firewall on %s: %w: %s", router, err, out)
	}
	return nil
}

// RemoveFirewall deletes router's firewall.
func (in *Internet) RemoveFirewall(router string) error {
	ns := in.ns[router]
	if ns == nil {
		return fmt.Errorf("internet: no router %s", router)
	}
	if out, err := ns.Run("nft", "delete table ip fw"); err != nil {
		return fmt.Errorf("internet: remove the firewall on %s: %w: %s", router, err, out)
	}
	return nil
}
