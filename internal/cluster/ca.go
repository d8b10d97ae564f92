package cluster

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// caKeyBits is the CA key size; nodes make keys of the same size, and 2048
// bits keeps enrolment quick.
const caKeyBits = 2048

// makeCA writes ca.key and ca.crt into dir, the certificate's serial
// encoding network, and returns the certificate's SHA-256 fingerprint as
// re6st-conf --fingerprint takes it.
func makeCA(dir string, network netip.Prefix) (fingerprint string, err error) {
	bits, err := wire.NetworkFromSubnet(network)
	if err != nil {
		return "", err
	}
	serial, err := wire.SerialFromNetwork(bits)
	if err != nil {
		return "", err
	}
	key, crt := filepath.Join(dir, "ca.key"), filepath.Join(dir, "ca.crt")
	for _, argv := range [][]string{
		{"genpkey", "-algorithm", "rsa", "-pkeyopt", fmt.Sprintf("rsa_keygen_bits:%d", caKeyBits), "-out", key},
		{"req", "-new", "-x509", "-key", key, "-out", crt, "-days", "365", "-sha512",
			"-subj", "/CN=re6st-bpf cluster/emailAddress=cluster@example.com", "-set_serial", "0x" + serial.Text(16)},
	} {
		if out, err := exec.Command("openssl", argv...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("openssl %s: %w: %s", argv[0], err, out)
		}
	}
	data, err := os.ReadFile(crt)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return "", fmt.Errorf("%s: no PEM certificate", crt)
	}
	sum := sha256.Sum256(block.Bytes)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// nodeSubnet returns the subnet and the CN that the node certificate in
// dir (cert.crt, in the network of ca.crt's serial) binds.
func nodeSubnet(dir string) (netip.Prefix, string, error) {
	var certs [2]*x509.Certificate
	for i, name := range []string{"ca.crt", "cert.crt"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return netip.Prefix{}, "", err
		}
		if certs[i], err = ca.ParseCertificate(data); err != nil {
			return netip.Prefix{}, "", fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
	}
	network, err := wire.NetworkFromSerial(certs[0].SerialNumber)
	if err != nil {
		return netip.Prefix{}, "", err
	}
	prefix, err := ca.NodePrefix(certs[1])
	if err != nil {
		return netip.Prefix{}, "", err
	}
	subnet, err := wire.Subnet(network, prefix)
	return subnet, certs[1].Subject.CommonName, err
}
