package alloc

import (
	"errors"
	"fmt"
	"strings"
)

// Blocks is the table of blocks the allocator works on; store.Tx
// implements it inside a transaction.
type Blocks interface {
	// LongestFree returns the longest free block starting with head and
	// at most maxLen bits long.
	LongestFree(head string, maxLen int) (string, bool, error)
	// Ancestor returns the block that contains head and whether it is
	// allocated (held or reserved).
	Ancestor(head string) (prefix string, allocated, found bool, err error)
	RenameBlock(from, to string) error
	InsertFree(prefix string) error
	DeleteBlock(prefix string) error
	MarkReserved(prefix string) error
	// LongestFreeLength returns the length of the longest free block
	// shorter than below.
	LongestFreeLength(below int) (int, bool, error)
	// FreeOfLength lists the free blocks of exactly length bits in order.
	FreeOfLength(length int) ([]string, error)
}

// ErrExhausted is returned when no free block can hold the request.
var ErrExhausted = errors.New("no free prefix left")

// Allocate returns a newly allocated (still free in the table: the caller
// stores the certificate) prefix of prefixLen bits after the community
// bits. hostBits is the room left by the network prefix (128 minus its
// length).
func Allocate(blocks Blocks, hostBits, prefixLen int, community string) (string, error) {
	target := prefixLen + len(community)
	if prefixLen <= 0 || target > hostBits {
		return "", fmt.Errorf("cannot allocate a /%d prefix in community %q: the network has %d host bits", prefixLen, community, hostBits)
	}
	for {
		prefix, found, err := blocks.LongestFree(community, target)
		if err != nil {
			return "", err
		}
		if !found {
			ancestor, allocated, found, err := blocks.Ancestor(community)
			if err != nil {
				return "", err
			}
			if !found || allocated {
				return "", fmt.Errorf("%w: no free /%d prefix in community %q", ErrExhausted, prefixLen, community)
			}
			prefix = ancestor
		}
		for len(prefix) < target {
			chosen := byte('0')
			if len(prefix) < len(community) {
				chosen = community[len(prefix)]
			}
			if err := blocks.RenameBlock(prefix, prefix+string('0'+'1'-chosen)); err != nil {
				return "", err
			}
			prefix += string(chosen)
			if err := blocks.InsertFree(prefix); err != nil {
				return "", err
			}
		}
		if !isReservedHost(prefix, hostBits, len(community)) {
			return prefix, nil
		}
		if err := blocks.MarkReserved(prefix); err != nil {
			return "", err
		}
	}
}

// isReservedHost reports whether prefix is the full-length block whose
// bits after the community are all zero: the subnet-router anycast address
// of that range, never handed out.
func isReservedHost(prefix string, hostBits, communityLen int) bool {
	return len(prefix) == hostBits && !strings.Contains(prefix[communityLen:], "1")
}

// Merge collapses free sibling blocks into their parent, longest first,
// until no two free siblings remain.
func Merge(blocks Blocks) error {
	below := 129
	for {
		length, found, err := blocks.LongestFreeLength(below)
		if err != nil || !found || length == 0 {
			return err
		}
		free, err := blocks.FreeOfLength(length)
		if err != nil {
			return err
		}
		previous := ""
		for _, prefix := range free {
			if previous != "" && prefix[:length-1] == previous[:length-1] {
				if err := blocks.DeleteBlock(prefix); err != nil {
					return err
				}
				if err := blocks.RenameBlock(previous, prefix[:length-1]); err != nil {
					return err
				}
				previous = ""
				continue
			}
			previous = prefix
		}
		below = length
	}
}
