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
