// Package bird runs a BIRD 2 routing daemon (Debian's bird2) in a network
// namespace, for the tests, benchmarks and demo of the BGP gateway: the
// upstream router a gateway peers with. Start writes the configuration and
// starts bird in the foreground; Show runs birdc against its control
// socket; Stop ends it and waits for it.
package bird
