package alloc_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/alloc"
	"github.com/re6st-bpf/re6st-bpf/registry/store"
)

func TestCommunityLookupOrder(t *testing.T) {
	communities, err := alloc.ParseCommunities(strings.NewReader("# demo map\n000 *\n001 @AS AU\n010 FR DE IT\n"))
	require.NoError(t, err)
	require.Equal(t, "010", communities.Lookup("FR", "EU"))
	require.Equal(t, "001", communities.Lookup("AU", "OC"), "country before continent")
	require.Equal(t, "001", communities.Lookup("JP", "AS"))
	require.Equal(t, "000", communities.Lookup("US", "NA"))
	require.Equal(t, "000", communities.Lookup("", ""))
	require.Equal(t, []string{"000", "001", "010"}, communities.All())
	require.Equal(t, "", alloc.Communities{}.Lookup("FR", "EU"))
}

func TestCommunityFileErrors(t *testing.T) {
	for input, message := range map[string]string{
		"000 *\n00 FR\n":      "overlap",
		"000 FR\n":            "default location",
		"0x1 *\n":             "string of 0 and 1",
		"000 *\n001 france\n": "country code",
		"000 *\n001\n":        "no location",
		"000 * FR\n001 FR\n":  "already belongs",
		"\n# nothing\n":       "no community",
	} {
		_, err := alloc.ParseCommunities(strings.NewReader(input))
		require.ErrorContains(t, err, message, "input %q", input)
	}
}

func TestCommunitiesRespectedByAllocation(t *testing.T) {
	communities, err := alloc.ParseCommunities(strings.NewReader("000 *\n001 @AS\n1 FR\n"))
	require.NoError(t, err)
	s := openStore(t)
	for range 10 {
		for _, location := range [][2]string{{"FR", "EU"}, {"JP", "AS"}, {"US", "NA"}} {
			community := communities.Lookup(location[0], location[1])
			prefix, err := allocate(t, s, 10, 4, community)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(prefix, community))
		}
	}
	checkTiling(t, s, 10, communities.All())
	require.NoError(t, s.View(func(tx *store.Tx) error { return communities.CheckAgainst(tx) }))
}

func TestCommunityInsideAllocatedPrefixRefused(t *testing.T) {
	s := openStore(t)
	_, err := allocate(t, s, 8, 1, "")
	require.NoError(t, err)
	communities, err := alloc.ParseCommunities(strings.NewReader("00 *\n1 FR\n"))
	require.NoError(t, err)
	err = s.View(func(tx *store.Tx) error { return communities.CheckAgainst(tx) })
	require.ErrorContains(t, err, "inside the allocated prefix")
}
