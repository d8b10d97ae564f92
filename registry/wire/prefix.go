package wire

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
)

// A prefix is written, as re6st stores it, as a string of '0' and '1'
// characters: the bits of a node's subnet that follow the network prefix.
// The whole network is the empty string.

// ValidBits reports whether s consists only of '0' and '1'.
func ValidBits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' && s[i] != '1' {
			return false
		}
	}
	return true
}

// CommonName returns the certificate CN of a prefix: "<value>/<length>" with
// the bits read as an unsigned integer, e.g. "0000000000000001" → "1/16".
func CommonName(prefix string) string {
	value := new(big.Int)
	if prefix != "" {
		value.SetString(prefix, 2)
	}
	return fmt.Sprintf("%s/%d", value.String(), len(prefix))
}

// PrefixFromCommonName is the inverse of CommonName.
func PrefixFromCommonName(cn string) (string, error) {
	valueText, lengthText, ok := strings.Cut(cn, "/")
	if !ok {
		return "", fmt.Errorf("common name %q is not of the form <integer>/<length>", cn)
	}
	length, err := strconv.Atoi(lengthText)
	if err != nil || length < 0 || length > 128 {
		return "", fmt.Errorf("common name %q: bad length", cn)
	}
	value, ok := new(big.Int).SetString(valueText, 10)
	if !ok || value.Sign() < 0 || value.BitLen() > length {
		return "", fmt.Errorf("common name %q: value does not fit in %d bits", cn, length)
	}
	if length == 0 {
		return "", nil
	}
	bits := value.Text(2)
	if value.Sign() == 0 {
		bits = ""
	}
	return strings.Repeat("0", length-len(bits)) + bits, nil
}

// NetworkFromSerial returns the network prefix bits encoded in a CA serial
// number: the serial is a 1 bit followed by the prefix bits.
func NetworkFromSerial(serial *big.Int) (string, error) {
	if serial == nil || serial.Sign() <= 0 {
		return "", errors.New("CA serial number must be positive to encode the network prefix")
	}
	bits := serial.Text(2)
	if len(bits)-1 > 128 {
		return "", fmt.Errorf("CA serial number encodes %d bits, more than an IPv6 address", len(bits)-1)
	}
	return bits[1:], nil
}

// SerialFromNetwork is the inverse of NetworkFromSerial.
func SerialFromNetwork(network string) (*big.Int, error) {
	if !ValidBits(network) || len(network) > 128 {
		return nil, fmt.Errorf("network %q is not a prefix of at most 128 bits", network)
	}
	serial, _ := new(big.Int).SetString("1"+network, 2)
	return serial, nil
}

// Subnet returns the IPv6 subnet made of the network bits followed by the
// node prefix bits, the host part set to zero.
func Subnet(network, prefix string) (netip.Prefix, error) {
	bits := network + prefix
	if !ValidBits(bits) || len(bits) > 128 {
		return netip.Prefix{}, fmt.Errorf("prefix %q in network %q is not a valid IPv6 prefix", prefix, network)
	}
	var addr [16]byte
	for i := 0; i < len(bits); i++ {
		if bits[i] == '1' {
			addr[i/8] |= 0x80 >> (i % 8)
		}
	}
	return netip.PrefixFrom(netip.AddrFrom16(addr), len(bits)), nil
}

// NetworkFromSubnet returns the bits of an IPv6 prefix, the inverse of
// Subnet with an empty node prefix.
func NetworkFromSubnet(subnet netip.Prefix) (string, error) {
	if !subnet.Addr().Is6() || subnet.Addr().Is4In6() {
		return "", fmt.Errorf("%s is not an IPv6 prefix", subnet)
	}
	addr := subnet.Addr().As16()
	var b strings.Builder
	for i := range subnet.Bits() {
		if addr[i/8]&(0x80>>(i%8)) != 0 {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	return b.String(), nil
}
