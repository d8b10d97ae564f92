// Package trafficload generates and measures traffic between network
// namespaces for the traffic-class tests and benchmarks: paced UDP flows
// and their received bytes, a bulk TCP flow, ping round trips, and Jain's
// fairness index.
package trafficload
