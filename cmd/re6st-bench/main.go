package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/re6st-bpf/re6st-bpf/internal/bench"
	"github.com/re6st-bpf/re6st-bpf/internal/version"
)

func main() {
	quick := flag.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "short run (default from BENCH_QUICK=1)")
	out := flag.String("out", "bench-results", "directory for results.md, results.json and results.png")
	asJSON := flag.Bool("json", false, "print the results as JSON instead of Markdown")
	rounds := flag.Int("rounds", 0, "rounds of interleaved measurements (0: 5, or 2 with --quick)")
	printVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *printVersion {
		fmt.Println(version.String())
		return
	}
	if err := run(bench.Config{Quick: *quick, Rounds: *rounds, Log: os.Stderr}, *out, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "re6st-bench:", err)
		os.Exit(1)
	}
}

func run(cfg bench.Config, out string, asJSON bool) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	r, err := bench.Run(cfg)
	if err != nil {
		return err
	}
	var md, js, png bytes.Buffer
	for _, w := range []struct {
		write func() error
		buf   *bytes.Buffer
		name  string
	}{
		{func() error { return r.WriteMarkdown(&md) }, &md, "results.md"},
		{func() error { return r.WriteJSON(&js) }, &js, "results.json"},
		{func() error { return r.WritePNG(&png) }, &png, "results.png"},
	} {
		if err := w.write(); err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		}
		if err := os.WriteFile(filepath.Join(out, w.name), w.buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if asJSON {
		_, err = os.Stdout.Write(js.Bytes())
	} else {
		_, err = os.Stdout.Write(md.Bytes())
	}
	return err
}
