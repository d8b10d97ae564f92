// Command re6stnet is the re6st-bpf node daemon. Its `status` subcommand
// shows a running node; `babel` runs the Babel routing protocol on its own,
// as a standalone router.
package main
