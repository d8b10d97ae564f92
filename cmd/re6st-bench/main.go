package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/re6st-bpf/re6st-bpf/internal/bench"
	"github.com/re6st-bpf/re6st-bpf/internal/version"
)

func main() {
	quick := flag.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "short run (default from BENCH_QUICK=1)")
	out := flag.String("out", "bench-results", "directory for results.md, results.json and results.png")
	asJSON := flag.Bool("json", false, "print the results as JSON instead of Markdown")
	rounds := flag.Int("rounds", 0, "rounds of interleaved measurements (0: 5, or 2 with --quick)")
	variants := flag.String("variants", "", "comma-separated variants to measure (default: all; the reference is always measured), e.g. fou-tc,fou-tc-ipv4")
	classes := flag.Bool("classes", false, "measure the traffic classes only")
	gateway := flag.Bool("gateway", false, "measure a border gateway's transit only (BPF against kernel forwarding)")
	printVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *printVersion {
		fmt.Println(version.String())
		return
	}
	measure := bench.Run
	if *classes {
		measure = bench.RunClasses
	}
	if *gateway {
		measure = bench.RunGateway
	}
	cfg := bench.Config{Quick: *quick, Rounds: *rounds, Log: os.Stderr}
	if *variants != "" {
		cfg.Variants = strings.Split(*variants, ",")
		for _, name := range cfg.Variants {
			if !slices.ContainsFunc(bench.Variants, func(v bench.Variant) bool { return v.Name == name }) {
				fmt.Fprintf(os.Stderr, "re6st-bench: unknown variant %q\n", name)
				os.Exit(2)
			}
		}
	}
	if err := run(measure, cfg, *out, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "re6st-bench:", err)
		os.Exit(1)
	}
}

func run(measure func(bench.Config) (*bench.Results, error), cfg bench.Config, out string, asJSON bool) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	r, err := measure(cfg)
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
		if w.name == "results.png" && len(r.Rows) == 0 {
			continue // --classes, --gateway: no chain figures to chart
		}
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
