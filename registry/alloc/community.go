package alloc

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// Communities maps locations to the leading bits of the prefixes allocated
// there. The zero value (no community file) puts every node in "".
type Communities struct {
	byLocation map[string]string
}

var (
	countryPattern   = regexp.MustCompile(`^[A-Z]{2}$`)
	continentPattern = regexp.MustCompile(`^@[A-Z]{2}$`)
)

// LoadCommunities reads a community file.
func LoadCommunities(path string) (Communities, error) {
	f, err := os.Open(path)
	if err != nil {
		return Communities{}, err
	}
	defer f.Close()
	communities, err := ParseCommunities(f)
	if err != nil {
		return Communities{}, fmt.Errorf("%s: %w", path, err)
	}
	return communities, nil
}

// ParseCommunities reads lines "<bits> <location>...", where a location is
// "*", a two-letter country code, or "@" and a two-letter continent code.
// Exactly one line must hold "*", and no community may be a prefix of
// another. Blank lines and text after "#" are ignored.
func ParseCommunities(r io.Reader) (Communities, error) {
	communities := Communities{byLocation: map[string]string{}}
	var all []string
	scanner := bufio.NewScanner(r)
	for lineNumber := 1; scanner.Scan(); lineNumber++ {
		line, _, _ := strings.Cut(scanner.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		bits := fields[0]
		if bits == "" || !wire.ValidBits(bits) {
			return Communities{}, fmt.Errorf("line %d: community %q is not a string of 0 and 1", lineNumber, bits)
		}
		if len(fields) < 2 {
			return Communities{}, fmt.Errorf("line %d: community %s has no location", lineNumber, bits)
		}
		for _, location := range fields[1:] {
			if location != "*" && !countryPattern.MatchString(location) && !continentPattern.MatchString(location) {
				return Communities{}, fmt.Errorf("line %d: location %q is not *, a country code (FR) or @ and a continent code (@EU)", lineNumber, location)
			}
			if other, dup := communities.byLocation[location]; dup {
				return Communities{}, fmt.Errorf("line %d: location %s already belongs to community %s", lineNumber, location, other)
			}
			communities.byLocation[location] = bits
		}
		all = append(all, bits)
	}
	if err := scanner.Err(); err != nil {
		return Communities{}, err
	}
	if len(all) == 0 {
		return Communities{}, fmt.Errorf("no community defined")
	}
	if _, ok := communities.byLocation["*"]; !ok {
		return Communities{}, fmt.Errorf("no community holds the default location *")
	}
	sort.Strings(all)
	for i := 1; i < len(all); i++ {
		if strings.HasPrefix(all[i], all[i-1]) {
			return Communities{}, fmt.Errorf("communities %s and %s overlap", all[i-1], all[i])
		}
	}
	return communities, nil
}

// Lookup returns the community of a location: the country's if listed,
// else the continent's, else the default one.
func (c Communities) Lookup(country, continent string) string {
	if c.byLocation == nil {
		return ""
	}
	if bits, ok := c.byLocation[strings.ToUpper(country)]; ok && country != "" {
		return bits
	}
	if bits, ok := c.byLocation["@"+strings.ToUpper(continent)]; ok && continent != "" {
		return bits
	}
	return c.byLocation["*"]
}

// All returns the distinct community prefixes, sorted.
func (c Communities) All() []string {
	seen := map[string]bool{}
	var all []string
	for _, bits := range c.byLocation {
		if !seen[bits] {
			seen[bits] = true
			all = append(all, bits)
		}
	}
	sort.Strings(all)
	return all
}

// MaxLength is the length of the longest community prefix.
func (c Communities) MaxLength() int {
	longest := 0
	for _, bits := range c.byLocation {
		longest = max(longest, len(bits))
	}
	return longest
}

// CheckAgainst verifies that no community lies inside an allocated block,
// which would make it impossible to allocate there.
func (c Communities) CheckAgainst(blocks Blocks) error {
	for _, bits := range c.All() {
		ancestor, allocated, found, err := blocks.Ancestor(bits)
		if err != nil {
			return err
		}
		if found && allocated && ancestor != bits {
			return fmt.Errorf("community %s lies inside the allocated prefix %q", bits, ancestor)
		}
		if found && allocated {
			return fmt.Errorf("community %s is itself an allocated prefix", bits)
		}
	}
	return nil
}
