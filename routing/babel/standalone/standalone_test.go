package standalone

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseExport(t *testing.T) {
	e, err := ParseExport("2001:db8:1::1/48")
	require.NoError(t, err)
	require.Equal(t, "2001:db8:1::/48", e.Prefix.String())
	require.False(t, e.Source.IsValid())
	e, err = ParseExport("::/0 from 2001:db8::/32")
	require.NoError(t, err)
	require.Equal(t, "::/0", e.Prefix.String())
	require.Equal(t, "2001:db8::/32", e.Source.String())
	for _, bad := range []string{"", "2001:db8::/129", "::/0 from x", "::/0 from 10.0.0.0/8"} {
		_, err := ParseExport(bad)
		require.Error(t, err, bad)
	}
	require.ErrorContains(t, Run(context.Background(), Options{}), "no interface")
	require.ErrorContains(t, Run(context.Background(), Options{Interfaces: []string{"no-such-if0"}}), "no-such-if0")
}
