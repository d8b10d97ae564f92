// Package relay asks nodes questions through the re6st node running on
// the registry's host, as re6st's registry does: a datagram
// "<binary prefix>\0<code><data>" sent to that node's control port
// ([::1]:326 by default) is forwarded over the overlay to the node owning
// the prefix, and its answer comes back in the same form. Codes: 1 = the
// node's addresses, 4 = its version, 5 = its tunnels (topology).
package relay
