package netparams_test

import (
	"bytes"
	"compress/zlib"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

const testdata = "../../testdata/registry/"

var defaults = netparams.Settings{ClientCount: 10, MaxClients: 20, TunnelRefresh: 300, Hello: 15, MinProtocol: 1}

func TestCanonicalMatchesPythonJSON(t *testing.T) {
	data, err := os.ReadFile(testdata + "vectors.json")
	require.NoError(t, err)
	var v struct {
		LastConfig []struct {
			CRL            []uint64 `json:"crl"`
			RegistryPrefix *string  `json:"registry_prefix"`
			IPv4           string   `json:"ipv4"`
			IPv4Sublen     int      `json:"ipv4_sublen"`
			SameCountry    []string `json:"same_country"`
			JSON           string   `json:"json"`
		} `json:"last_config"`
	}
	require.NoError(t, json.Unmarshal(data, &v))
	require.Len(t, v.LastConfig, 2)
	for _, vector := range v.LastConfig {
		settings := defaults
		settings.IPv4, settings.IPv4Sublen, settings.SameCountry = vector.IPv4, vector.IPv4Sublen, vector.SameCountry
		prefix := ""
		if vector.RegistryPrefix != nil {
			prefix = *vector.RegistryPrefix
		}
		require.Equal(t, vector.JSON, netparams.Canonical(settings, vector.CRL, prefix))
	}
}

func TestRotationStateMachine(t *testing.T) {
	k := func(b byte) []byte { return bytes.Repeat([]byte{b}, 16) }
	steady := netparams.Slots{{Set: true, Key: k(0)}}
	sign, accept := steady.Published()
	require.Equal(t, k(0), sign.Key)
	require.False(t, accept.Set)

	phase1, isPhase1 := steady.Rotate(k(1))
	require.True(t, isPhase1)
	sign, accept = phase1.Published()
	require.Equal(t, k(0), sign.Key, "phase 1 still signs with the old key")
	require.Equal(t, k(1), accept.Key, "and accepts the new one")

	phase2, isPhase1 := phase1.Rotate(k(2))
	require.False(t, isPhase1)
	require.False(t, phase2[0].Set)
	sign, accept = phase2.Published()
	require.Equal(t, k(1), sign.Key)
	require.Equal(t, k(0), accept.Key)

	done, _ := phase2.Rotate(k(3))
	require.Equal(t, netparams.Slots{{Set: true, Key: k(1)}}, done)

	legacy, _ := netparams.Slots{}.Rotate(k(4))
	sign, accept = legacy.Published()
	require.Equal(t, k(4), sign.Key)
	require.True(t, accept.Set)
	require.Empty(t, accept.Key, "a network without keys first accepts anything")
	after, _ := legacy.Rotate(k(5))
	require.Equal(t, netparams.Slots{{Set: true, Key: k(4)}}, after)
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	caKey := loadKey(t, "ca.key")
	node := loadKey(t, "node.key")
	signed, err := wire.EncodeVersion(7, caKey)
	require.NoError(t, err)
	document := netparams.Document{
		Canonical:     netparams.Canonical(defaults, []uint64{5, 9}, "0000000000000001"),
		SignedVersion: signed,
		ValidUntil:    1800000000,
		Sign:          netparams.Slot{Set: true, Key: bytes.Repeat([]byte{7}, 16)},
		Accept:        netparams.Slot{Set: true},
	}
	body, err := document.Encode(&node.PublicKey)
	require.NoError(t, err)

	// The raw JSON keeps re6st's layout.
	r, err := zlib.NewReader(bytes.NewReader(body))
	require.NoError(t, err)
	plain, err := io.ReadAll(r)
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(plain, &raw))
	require.Equal(t, []any{"version"}, raw[""])
	require.Equal(t, "", raw["babel_hmac_accept"])
	require.NotContains(t, string(plain), "BwcHBwcHBwcHBwcHBwcHBw", "the key is never sent in clear")

	params, err := netparams.Decode(body, &caKey.PublicKey, node)
	require.NoError(t, err)
	require.EqualValues(t, 7, params.Version)
	require.Equal(t, []uint64{5, 9}, params.CRL)
	require.Equal(t, 10, params.Protocol)
	require.Equal(t, "0000000000000001", params.RegistryPrefix)
	require.EqualValues(t, 1800000000, params.ValidUntil)
	require.Equal(t, bytes.Repeat([]byte{7}, 16), params.BabelHMACSign.Key)
	require.True(t, params.BabelHMACAccept.Set)
	require.Empty(t, params.BabelHMACAccept.Key)

	other := loadKey(t, "ca.key")
	_, err = netparams.Decode(body, &node.PublicKey, node)
	require.ErrorIs(t, err, wire.ErrBadVersion, "signed by someone else than the CA")
	_, err = netparams.Decode(body, &caKey.PublicKey, other)
	require.ErrorContains(t, err, "cannot decrypt")
	_, err = netparams.Decode([]byte("not zlib"), &caKey.PublicKey, node)
	require.ErrorContains(t, err, "zlib")
}

func loadKey(t *testing.T, name string) *rsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile(testdata + name)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	return key.(*rsa.PrivateKey)
}

// The communities are published in sorted-key order only when set, so a
// network without a community file keeps its parameters as they were.
func TestCanonicalCommunities(t *testing.T) {
	with := defaults
	with.Communities = []string{"00", "1"}
	require.Contains(t, netparams.Canonical(with, nil, ""), `"client_count": 10, "communities": ["00", "1"], "crl": []`)
	require.NotContains(t, netparams.Canonical(defaults, nil, ""), "communities")
}
