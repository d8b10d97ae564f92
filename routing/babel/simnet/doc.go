// Package simnet runs Babel routers on an in-memory network driven by a
// virtual clock: events (timers and packet deliveries) execute one at a
// time in time order, so that simulations of thousands of routers are
// deterministic in structure, fast, and can be checked after every event
// (for instance for forwarding loops).
package simnet
