// Command re6stnet is the re6st-bpf node. Its `babel` subcommand runs the
// Babel routing protocol on its own, as a standalone router.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := rootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "re6stnet:", err)
		os.Exit(1)
	}
}
