package atfile

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/google/shlex"
	"github.com/spf13/pflag"
)

// maxDepth bounds nested includes.
const maxDepth = 8

// Spec describes the options of a command.
type Spec struct {
	// Flags are the command's flag sets (e.g. its local and persistent
	// flags), where shorthands are looked up: see flagOf.
	Flags []*pflag.FlagSet
	// Arity is the number of values of the options that take more than
	// one, by long name (e.g. {"ipv4": 2}); their values are joined with a
	// space, on the command line (long or short form) and in files.
	Arity map[string]int
}

// shorthand finds a flag by its one-letter shorthand.
func (s Spec) shorthand(name string) *pflag.Flag {
	for _, fs := range s.Flags {
		if f := fs.ShorthandLookup(name); f != nil {
			return f
		}
	}
	return nil
}

// arity is the number of values of the flag an argument names ("--req",
// "-r"); 0 or 1 for ordinary flags.
func (s Spec) arity(arg string) int {
	if name, ok := strings.CutPrefix(arg, "--"); ok {
		return s.Arity[name]
	}
	if name, ok := strings.CutPrefix(arg, "-"); ok && len(name) == 1 {
		if f := s.shorthand(name); f != nil {
			return s.Arity[f.Name]
		}
	}
	return 0
}

// Expand returns args with every "@file" expanded and the values of the
// options that take several joined into one argument.
func Expand(args []string, spec Spec) ([]string, error) {
	return spec.expand(args, 0)
}

func (s Spec) expand(args []string, depth int) ([]string, error) {
	var out []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if path, ok := strings.CutPrefix(arg, "@"); ok && path != "" {
			included, err := s.readFile(path, depth)
			if err != nil {
				return nil, err
			}
			out = append(out, included...)
			continue
		}
		if n := s.arity(arg); n > 1 {
			if i+n >= len(args) {
				return nil, fmt.Errorf("%s takes %d values", arg, n)
			}
			out = append(out, arg, strings.Join(args[i+1:i+1+n], " "))
			i += n
			continue
		}
		out = append(out, arg)
	}
	return out, nil
}

// flagOf is the argument a file's option name stands for: re6st prefixes
// "--" to a known long option and "-" to anything else, so that "v" is -v
// and "O--verb" is -O with "--verb" glued on. A glued value must not start
// with a letter here: a misspelt long option ("registy") is then reported
// as unknown instead of read as -r "egisty".
func (s Spec) flagOf(name string) string {
	glued := len(name) > 1 && !unicode.IsLetter(rune(name[1])) && s.shorthand(name[:1]) != nil
	if len(name) == 1 || glued {
		return "-" + name
	}
	return "--" + name
}

func (s Spec) readFile(path string, depth int) ([]string, error) {
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
		line := strings.TrimSpace(scanner.Text())
		if include, ok := strings.CutPrefix(line, "@"); ok {
			include = strings.TrimSpace(include)
			if !filepath.IsAbs(include) {
				include = filepath.Join(filepath.Dir(path), include)
			}
			included, err := s.readFile(include, depth+1)
			if err != nil {
				return nil, err
			}
			args = append(args, included...)
			continue
		}
		// Shell quoting, as re6st's shlex.split: `up "ip link set x up"`.
		fields, err := shlex.Split(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, lineNumber, err)
		}
		if len(fields) == 0 {
			continue
		}
		name, values := fields[0], fields[1:]
		flag := s.flagOf(name)
		switch n := s.arity(flag); {
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
