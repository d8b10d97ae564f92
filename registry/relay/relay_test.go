package relay_test

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/relay"
)

// A stand-in for the local node: answers version queries for two
// prefixes, plus an answer nobody asked for.
func TestQueryCollectsAnswersOfAskedPrefixes(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer conn.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			prefix, code, _ := bytes.Cut(buf[:n], []byte{0})
			if string(prefix) == "0000000000000011" {
				continue // this node does not answer
			}
			conn.WriteTo([]byte("0000000000001111\x00\x04stray"), from)
			conn.WriteTo(append(append(append([]byte{}, prefix...), 0, code[0]|0x80), "10, linux"...), from)
		}
	}()
	r := &relay.Relay{Address: conn.LocalAddr().String(), Timeout: 300 * time.Millisecond}
	answers, err := r.Query(context.Background(), []string{"0000000000000001", "0000000000000010", "0000000000000011"}, relay.CodeVersion)
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{
		"0000000000000001": []byte("10, linux"),
		"0000000000000010": []byte("10, linux"),
	}, answers)
}
