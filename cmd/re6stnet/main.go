// Command re6stnet is the re6st-bpf node daemon. Its `status` subcommand
// shows a running node; `babel` runs the Babel routing protocol on its own,
// as a standalone router.
package main

import (
	"fmt"
	"os"

	"github.com/re6st-bpf/re6st-bpf/registry/atfile"
)

func main() {
	args, err := atfile.Expand(os.Args[1:], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "re6stnet:", err)
		os.Exit(2)
	}
	root := rootCommand()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "re6stnet:", err)
		os.Exit(1)
	}
}
