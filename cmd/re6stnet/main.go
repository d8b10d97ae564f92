package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/re6st-bpf/re6st-bpf/registry/atfile"
)

func main() {
	root := rootCommand()
	args, err := atfile.Expand(os.Args[1:], atfile.Spec{
		Flags: []*pflag.FlagSet{root.Flags(), root.PersistentFlags()}, Arity: map[string]int{"pp": 2}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "re6stnet:", err)
		os.Exit(2)
	}
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "re6stnet:", err)
		os.Exit(1)
	}
}
