package wire_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// Vectors computed by testdata/registry/make-vectors.{sh,py} with openssl
// and the Python standard library.
type vectors struct {
	PackedIntegers []struct {
		Value uint64 `json:"value"`
		Hex   string `json:"hex"`
	} `json:"packed_integers"`
	CommonNames []struct {
		Prefix string `json:"prefix"`
		CN     string `json:"cn"`
	} `json:"common_names"`
	CASerial struct {
		Hex     string `json:"hex"`
		Network string `json:"network"`
	} `json:"ca_serial"`
	HMACChain []struct {
		Key         string `json:"key"`
		Path        string `json:"path"`
		RequestMAC  string `json:"request_mac"`
		Body        string `json:"body"`
		ResponseMAC string `json:"response_mac"`
	} `json:"hmac_chain"`
}

const testdata = "../../testdata/registry/"

func loadVectors(t *testing.T) vectors {
	t.Helper()
	data, err := os.ReadFile(testdata + "vectors.json")
	require.NoError(t, err)
	var v vectors
	require.NoError(t, json.Unmarshal(data, &v))
	return v
}

func TestPackIntegerVectors(t *testing.T) {
	for _, vector := range loadVectors(t).PackedIntegers {
		packed, err := wire.PackInteger(vector.Value)
		require.NoError(t, err)
		require.Equal(t, vector.Hex, hex.EncodeToString(packed), "pack %d", vector.Value)
		value, size, err := wire.UnpackInteger(append(packed, 0xff, 0xee))
		require.NoError(t, err)
		require.Equal(t, vector.Value, value)
		require.Equal(t, len(packed), size)
	}
	_, _, err := wire.UnpackInteger([]byte{0x40, 0})
	require.ErrorIs(t, err, wire.ErrTruncatedInteger)
}

func TestPackIntegerPreservesOrder(t *testing.T) {
	previous, _ := wire.PackInteger(0)
	for i := uint64(1); i < 100000; i += 7 {
		packed, err := wire.PackInteger(i)
		require.NoError(t, err)
		require.Greater(t, string(packed), string(previous))
		previous = packed
	}
}

func TestCommonNameVectors(t *testing.T) {
	for _, vector := range loadVectors(t).CommonNames {
		require.Equal(t, vector.CN, wire.CommonName(vector.Prefix))
		prefix, err := wire.PrefixFromCommonName(vector.CN)
		require.NoError(t, err)
		require.Equal(t, vector.Prefix, prefix)
	}
	for _, bad := range []string{"1", "x/16", "5/2", "-1/16", "1/129", "1/-1"} {
		_, err := wire.PrefixFromCommonName(bad)
		require.Error(t, err, bad)
	}
}

func TestNetworkFromCASerial(t *testing.T) {
	v := loadVectors(t).CASerial
	serial, _ := new(big.Int).SetString(v.Hex, 16)
	network, err := wire.NetworkFromSerial(serial)
	require.NoError(t, err)
	require.Equal(t, v.Network, network)
	subnet, err := wire.Subnet(network, "0000000000000001")
	require.NoError(t, err)
	require.Equal(t, netip.MustParsePrefix("2001:db8:42:1::/64"), subnet)
	back, err := wire.SerialFromNetwork(network)
	require.NoError(t, err)
	require.Equal(t, serial, back)
	// The serial of the committed test CA made by openssl.
	ca := loadCertificate(t, "ca.crt")
	network, err = wire.NetworkFromSerial(ca.SerialNumber)
	require.NoError(t, err)
	require.Equal(t, v.Network, network)
}

func TestHMACChainVectors(t *testing.T) {
	chain := loadVectors(t).HMACChain
	key, err := hex.DecodeString(chain[0].Key)
	require.NoError(t, err)
	for _, step := range chain {
		require.Equal(t, step.Key, hex.EncodeToString(key))
		require.Equal(t, step.RequestMAC, base64.StdEncoding.EncodeToString(wire.RequestMAC(key, step.Path)))
		require.Equal(t, step.ResponseMAC, base64.StdEncoding.EncodeToString(wire.ResponseMAC(key, []byte(step.Body))))
		key = wire.NextKey(key)
	}
}

func TestOpenHelloFromOpenSSL(t *testing.T) {
	answer, err := os.ReadFile(testdata + "hello-answer.bin")
	require.NoError(t, err)
	secret, err := os.ReadFile(testdata + "hello-secret.bin")
	require.NoError(t, err)
	ca := loadCertificate(t, "ca.crt").PublicKey.(*rsa.PublicKey)
	node := loadKey(t, "node.key")
	got, err := wire.OpenHello(answer, ca, node)
	require.NoError(t, err)
	require.Equal(t, secret, got)
	tampered := append([]byte(nil), answer...)
	tampered[3] ^= 1
	_, err = wire.OpenHello(tampered, ca, node)
	require.ErrorIs(t, err, wire.ErrBadHello)
}

func TestSealHelloRoundTrip(t *testing.T) {
	caKey := loadKey(t, "ca.key")
	node := loadKey(t, "node.key")
	secret, err := wire.NewHelloSecret(time.Unix(1700000000, 5000))
	require.NoError(t, err)
	require.Len(t, secret, 20)
	require.Equal(t, "00060a24181e4005", hex.EncodeToString(secret[:8]), "µs timestamp, big-endian (python3: (1700000000*10**6+5).to_bytes(8,\"big\"))")
	answer, err := wire.SealHello(&node.PublicKey, caKey, secret)
	require.NoError(t, err)
	got, err := wire.OpenHello(answer, &caKey.PublicKey, node)
	require.NoError(t, err)
	require.Equal(t, secret, got)
}

func TestVerifyVersionFromOpenSSL(t *testing.T) {
	signed, err := os.ReadFile(testdata + "version-300.bin")
	require.NoError(t, err)
	ca := loadCertificate(t, "ca.crt").PublicKey.(*rsa.PublicKey)
	version, err := wire.VerifyVersion(signed, ca)
	require.NoError(t, err)
	require.EqualValues(t, 300, version)
	ours, err := wire.EncodeVersion(300, loadKey(t, "ca.key"))
	require.NoError(t, err)
	require.Equal(t, signed, ours, "PKCS#1 v1.5 signatures are deterministic")
	signed[1] = 0x0d
	_, err = wire.VerifyVersion(signed, ca)
	require.ErrorIs(t, err, wire.ErrBadVersion)
}

func loadCertificate(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(testdata + name)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
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
