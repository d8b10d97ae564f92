package babel

import "encoding/binary"

// PrefixBytes returns how many octets of the Babel packet pkt are about
// prefixes: its Update, Router-Id, Next Hop, Route Request and Seqno
// Request TLVs, and its header and trailer too when it carries such a TLV
// and no Hello or IHU (a packet sent only because there were prefixes to
// announce). The rest — Hellos, IHUs, the packets that carry them,
// wildcard Updates and Route Requests (one asks a new neighbour for
// everything), padding — is the same whatever the number of prefixes. A
// malformed packet counts as not about prefixes.
func PrefixBytes(pkt []byte) int {
	if len(pkt) < 4 {
		return 0
	}
	end := min(4+int(binary.BigEndian.Uint16(pkt[2:4])), len(pkt))
	prefix, tlvs := 0, 0
	neighbourly := false
	for i := 4; i < end; {
		typ, n := pkt[i], 1
		if typ != tlvPad1 {
			if i+2 > end || i+2+int(pkt[i+1]) > end {
				return 0
			}
			n = 2 + int(pkt[i+1])
		}
		switch typ {
		case tlvHello, tlvIHU:
			neighbourly = true
		case tlvUpdate, tlvRouteRequest:
			if n > 2 && pkt[i+2] != aeWildcard {
				prefix += n
			}
		case tlvRouterID, tlvNextHop, tlvSeqnoRequest:
			prefix += n
		}
		tlvs += n
		i += n
	}
	if prefix > 0 && !neighbourly {
		prefix += len(pkt) - tlvs // header and trailer
	}
	return prefix
}
