package version

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
)

// String is "re6st-bpf VERSION (REVISION[, modified]) protocol N".
func String() string {
	version, revision := "(devel)", "unknown revision"
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		var modified bool
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value[:min(12, len(s.Value))]
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified {
			revision += ", modified"
		}
	}
	return fmt.Sprintf("re6st-bpf %s (%s) protocol %d", version, revision, netparams.Protocol)
}

// AddFlag gives cmd "-V, --version" (re6st's spelling), printing String.
func AddFlag(cmd *cobra.Command) {
	cmd.Version = String()
	cmd.SetVersionTemplate("{{.Version}}\n")
	cmd.Flags().BoolP("version", "V", false, "print the version and exit")
}
