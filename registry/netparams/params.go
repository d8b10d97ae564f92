package netparams

import (
	"bytes"
	"compress/zlib"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// Protocol is the re6st protocol version this implementation speaks.
const Protocol = 10

// BabelDefault is the babeld "default" statement re6st publishes.
const BabelDefault = "max-rtt-penalty 5000 rtt-max 500 rtt-decay 125"

// Settings are the registry options published to every node.
type Settings struct {
	ClientCount   int
	MaxClients    int
	TunnelRefresh int // seconds
	Hello         int // seconds
	Encrypt       bool
	MinProtocol   int
	IPv4          string // "A.B.C.D/N", empty if the IPv4 payload is off
	IPv4Sublen    int
	SameCountry   []string

	// TrafficClasses, when set, are published as "traffic_classes"; a
	// network without them publishes exactly what it did before.
	TrafficClasses []TrafficClass

	// Communities are the community prefixes of the registry's community
	// file (bit strings after the network's), published as "communities"
	// when the registry has one, so that a border gateway derives the
	// prefix of its community from its own (docs/gateway.md).
	Communities []string
}

// Canonical returns the JSON of the parameters that define a version, in
// the exact form re6st stores as last_config (Python's json.dumps with
// sorted keys), so a database moved between the two implementations does
// not bump its version. registryPrefix is empty until the first
// certificate is issued.
func Canonical(settings Settings, crl []uint64, registryPrefix string) string {
	fields := map[string]string{
		"babel_default":   quote(BabelDefault),
		"client_count":    strconv.Itoa(settings.ClientCount),
		"crl":             intList(crl),
		"encrypt":         strconv.FormatBool(settings.Encrypt),
		"hello":           strconv.Itoa(settings.Hello),
		"max_clients":     strconv.Itoa(settings.MaxClients),
		"min_protocol":    strconv.Itoa(settings.MinProtocol),
		"protocol":        strconv.Itoa(Protocol),
		"registry_prefix": "null",
		"tunnel_refresh":  strconv.Itoa(settings.TunnelRefresh),
	}
	if registryPrefix != "" {
		fields["registry_prefix"] = quote(registryPrefix)
	}
	if settings.IPv4 != "" {
		fields["ipv4"] = quote(settings.IPv4)
		fields["ipv4_sublen"] = strconv.Itoa(settings.IPv4Sublen)
	}
	if len(settings.TrafficClasses) > 0 {
		fields["traffic_classes"] = canonicalClasses(settings.TrafficClasses)
	}
	if len(settings.SameCountry) > 0 {
		fields["same_country"] = stringList(settings.SameCountry)
	}
	if len(settings.Communities) > 0 {
		fields["communities"] = stringList(settings.Communities)
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(name) + ": " + fields[name])
	}
	b.WriteByte('}')
	return b.String()
}

func quote(s string) string {
	// The published strings are ASCII, where Go and Python escape alike.
	encoded, _ := json.Marshal(s)
	return string(encoded)
}

func stringList(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = quote(v)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

func intList(values []uint64) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = strconv.FormatUint(v, 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Document is what getNetworkConfig returns to one node.
type Document struct {
	Canonical     string // from Canonical
	SignedVersion []byte
	ValidUntil    int64 // Unix time; 0 when no key rotation is under way
	Sign, Accept  Slot  // the published Babel keys
}

// Encode returns the zlib-compressed JSON for the node whose public key is
// given, with the Babel keys encrypted to it.
func (d Document) Encode(node *rsa.PublicKey) ([]byte, error) {
	var fields map[string]any
	if err := json.Unmarshal([]byte(d.Canonical), &fields); err != nil {
		return nil, fmt.Errorf("canonical parameters: %w", err)
	}
	fields["version"] = base64.StdEncoding.EncodeToString(d.SignedVersion)
	fields[""] = []string{"version"}
	if d.ValidUntil != 0 {
		fields["valid_until"] = d.ValidUntil
	}
	for name, slot := range map[string]Slot{"babel_hmac_sign": d.Sign, "babel_hmac_accept": d.Accept} {
		if !slot.Set {
			continue
		}
		if len(slot.Key) == 0 {
			fields[name] = ""
			continue
		}
		encrypted, err := wire.Encrypt(node, slot.Key)
		if err != nil {
			return nil, err
		}
		fields[name] = base64.StdEncoding.EncodeToString(encrypted)
	}
	plain, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	var compressed bytes.Buffer
	w := zlib.NewWriter(&compressed)
	w.Write(plain)
	if err := w.Close(); err != nil {
		return nil, err
	}
	return compressed.Bytes(), nil
}

// Params are the network parameters as a node sees them, verified and
// decrypted.
type Params struct {
	BabelDefault   string   `json:"babel_default"`
	CRL            []uint64 `json:"crl"`
	Protocol       int      `json:"protocol"`
	MinProtocol    int      `json:"min_protocol"`
	RegistryPrefix string   `json:"registry_prefix"`
	ClientCount    int      `json:"client_count"`
	MaxClients     int      `json:"max_clients"`
	TunnelRefresh  int      `json:"tunnel_refresh"`
	Hello          int      `json:"hello"`
	Encrypt        bool     `json:"encrypt"`
	IPv4           string   `json:"ipv4,omitempty"`
	IPv4Sublen     int      `json:"ipv4_sublen,omitempty"`
	SameCountry    []string `json:"same_country,omitempty"`
	Communities    []string `json:"communities,omitempty"`
	ValidUntil     int64    `json:"valid_until,omitempty"`
	DelayRestart   int      `json:"delay_restart,omitempty"`
	// Version is the number of the signed version; SignedVersion the bytes
	// nodes flood to each other.
	Version       uint64 `json:"-"`
	SignedVersion []byte `json:"-"`
	// BabelHMACSign and BabelHMACAccept are the decrypted Babel keys.
	BabelHMACSign   Slot `json:"-"`
	BabelHMACAccept Slot `json:"-"`

	// TrafficClasses are the network's traffic classes, class id i+1 for
	// the i-th (docs/traffic-classes.md).
	TrafficClasses []TrafficClass `json:"traffic_classes,omitempty"`
}

// MaxDocumentSize bounds the decompressed size of a parameters document.
const MaxDocumentSize = 1 << 20

// Decode decompresses and parses a getNetworkConfig answer, checks the
// version signature with the CA key and decrypts the Babel keys with the
// node key.
func Decode(body []byte, ca *rsa.PublicKey, node *rsa.PrivateKey) (*Params, error) {
	r, err := zlib.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("network parameters are not zlib data: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, MaxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("network parameters: %w", err)
	}
	if len(plain) > MaxDocumentSize {
		return nil, errors.New("network parameters larger than 1 MiB")
	}
	var params Params
	if err := json.Unmarshal(plain, &params); err != nil {
		return nil, fmt.Errorf("network parameters: %w", err)
	}
	var raw struct {
		Version string  `json:"version"`
		Sign    *string `json:"babel_hmac_sign"`
		Accept  *string `json:"babel_hmac_accept"`
	}
	var base64Keys []string
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(plain, &fields); err != nil {
		return nil, err
	}
	if encoded, ok := fields[""]; ok {
		if err := json.Unmarshal(encoded, &base64Keys); err != nil {
			return nil, fmt.Errorf("network parameters: bad base64 key list: %w", err)
		}
	}
	if err := json.Unmarshal(plain, &raw); err != nil {
		return nil, err
	}
	versionBytes := []byte(raw.Version)
	for _, name := range base64Keys {
		if name == "version" {
			if versionBytes, err = base64.StdEncoding.DecodeString(raw.Version); err != nil {
				return nil, fmt.Errorf("network parameters: version is not base64: %w", err)
			}
		}
	}
	if params.Version, err = wire.VerifyVersion(versionBytes, ca); err != nil {
		return nil, err
	}
	params.SignedVersion = versionBytes
	if params.BabelHMACSign, err = decryptSlot(raw.Sign, node); err != nil {
		return nil, fmt.Errorf("babel_hmac_sign: %w", err)
	}
	if params.BabelHMACAccept, err = decryptSlot(raw.Accept, node); err != nil {
		return nil, fmt.Errorf("babel_hmac_accept: %w", err)
	}
	return &params, nil
}

func decryptSlot(value *string, node *rsa.PrivateKey) (Slot, error) {
	if value == nil {
		return Slot{}, nil
	}
	if *value == "" {
		return Slot{Set: true}, nil
	}
	ciphertext, err := base64.StdEncoding.DecodeString(*value)
	if err != nil {
		return Slot{}, err
	}
	key, err := wire.Decrypt(node, ciphertext)
	if err != nil {
		return Slot{}, fmt.Errorf("cannot decrypt with this node's key: %w", err)
	}
	return Slot{Set: true, Key: key}, nil
}

// CommunityPrefix returns the prefix of the published community that
// prefix (a node's, inside network) falls in; false when the network
// publishes no communities or none holds it.
func (p *Params) CommunityPrefix(network, prefix netip.Prefix) (netip.Prefix, bool) {
	networkBits, err := wire.NetworkFromSubnet(network)
	if err != nil {
		return netip.Prefix{}, false
	}
	for _, bits := range p.Communities {
		community, err := wire.Subnet(networkBits, bits)
		if err == nil && community.Bits() <= prefix.Bits() && community.Contains(prefix.Addr()) {
			return community, true
		}
	}
	return netip.Prefix{}, false
}
