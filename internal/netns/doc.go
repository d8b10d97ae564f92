// Package netns builds throw-away network namespaces and veth links for
// integration tests, benchmarks and the demo.
//
// Every namespace is a named one (visible to `ip netns`), so external peers
// such as babeld, iperf3 or ping run inside it with Exec. Go code runs inside
// it with Do, on an OS thread locked for the duration of the call: BPF device
// maps and XDP/tcx attachments resolve interface indexes in the namespace of
// the calling thread, so they must be made from inside.
package netns
