package control

import (
	"bytes"
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

func TestServeDump(t *testing.T) {
	r, err := babel.NewRouter(babel.Config{RouterID: babel.RouterID{1, 2, 3, 4, 5, 6, 7, 8}})
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, r.Export(netip.MustParsePrefix("::/0"), netip.MustParsePrefix("2001:db8::/32"), 0))
	path := filepath.Join(t.TempDir(), "c.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, path, r, zerolog.Nop()) }()
	var d babel.Dump
	require.Eventually(t, func() bool { d, err = Dump(path); return err == nil }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, "01:02:03:04:05:06:07:08", d.RouterID)
	require.Len(t, d.Exported, 1)
	require.Equal(t, "2001:db8::/32", d.Exported[0].Source.String())

	var out bytes.Buffer
	require.NoError(t, WriteText(&out, d))
	require.Contains(t, out.String(), "xroute ::/0 from 2001:db8::/32 metric 0")

	cancel()
	require.NoError(t, <-done)
	_, err = Dump(path)
	require.ErrorContains(t, err, "is re6stnet babel running?")
}
