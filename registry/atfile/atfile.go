package atfile

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxDepth bounds nested includes.
const maxDepth = 8

// Expand returns args with every "@file" expanded. arity gives the number
// of values of the options that take more than one (by long name, e.g.
// {"ipv4": 2}); their values are joined with a space.
func Expand(args []string, arity map[string]int) ([]string, error) {
	return expand(args, arity, 0)
}

func expand(args []string, arity map[string]int, depth int) ([]string, error) {
	var out []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if path, ok := strings.CutPrefix(arg, "@"); ok && path != "" {
			included, err := readFile(path, arity, depth)
			if err != nil {
				return nil, err
			}
			out = append(out, included...)
			continue
		}
		name, isLong := strings.CutPrefix(arg, "--")
		if n := arity[name]; isLong && n > 1 && !strings.Contains(name, "=") {
			if i+n >= len(args) {
				return nil, fmt.Errorf("--%s takes %d values", name, n)
			}
			out = append(out, arg, strings.Join(args[i+1:i+1+n], " "))
			i += n
			continue
		}
		out = append(out, arg)
	}
	return out, nil
}

func readFile(path string, arity map[string]int, depth int) ([]string, error) {
	if depth >= maxDepth {
		return nil, fmt.Errorf("@%s: includes nested more than %d deep", path, maxDepth)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("option file: %w", err)
	}
	defer f.Close()
	var args []string
	scanner := bufio.NewScanner(f)
	for lineNumber := 1; scanner.Scan(); lineNumber++ {
		line, _, _ := strings.Cut(scanner.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if include, ok := strings.CutPrefix(fields[0], "@"); ok {
			if !filepath.IsAbs(include) {
				include = filepath.Join(filepath.Dir(path), include)
			}
			included, err := readFile(include, arity, depth+1)
			if err != nil {
				return nil, err
			}
			args = append(args, included...)
			continue
		}
		name, values := fields[0], fields[1:]
		flag := "--" + name
		if len(name) == 1 {
			flag = "-" + name
		}
		switch n := arity[name]; {
		case len(values) == 0:
			args = append(args, flag)
		case n > 1:
			if len(values) != n {
				return nil, fmt.Errorf("%s:%d: %s takes %d values, got %d", path, lineNumber, name, n, len(values))
			}
			args = append(args, flag, strings.Join(values, " "))
		default:
			for _, value := range values {
				args = append(args, flag, value)
			}
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return args, nil
}
