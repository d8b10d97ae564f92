package netparams

// BabelKeySize is the size of a generated Babel HMAC key.
const BabelKeySize = 16

// Slot is one Babel key slot: unset, set to a key, or set empty (meaning
// "accept packets without a valid signature").
type Slot struct {
	Set bool
	Key []byte
}

func (s Slot) hasKey() bool { return s.Set && len(s.Key) > 0 }

// Slots are the three Babel key slots the registry keeps.
type Slots [3]Slot

// Published returns the keys nodes use: sign is the first set slot,
// accept the second.
func (s Slots) Published() (sign, accept Slot) {
	var found []Slot
	for _, slot := range s {
		if slot.Set {
			found = append(found, slot)
		}
	}
	if len(found) > 0 {
		sign = found[0]
	}
	if len(found) > 1 {
		accept = found[1]
	}
	return sign, accept
}

// Rotate advances the key rotation by one step and reports whether the
// new state is phase 1, during which nodes must re-check the parameters
// before valid_until:
//
//	(k0, –, –)  → (k0, k1, –)  phase 1: sign k0, accept k1
//	(k0, k1, –) → (–, k1, k0)  phase 2: sign k1, accept k0
//	(–, k1, k0) → (k1, –, –)   steady
//	(–, –, –)   → (–, k1, "")  a network without keys: sign k1, accept anything
func (s Slots) Rotate(newKey []byte) (next Slots, phase1 bool) {
	switch {
	case s[0].hasKey() && !s[1].Set:
		return Slots{s[0], {Set: true, Key: newKey}, {}}, true
	case s[0].hasKey():
		return Slots{{}, s[1], s[0]}, false
	case s[1].Set:
		return Slots{s[1], {}, {}}, false
	default:
		return Slots{{}, {Set: true, Key: newKey}, {Set: true}}, false
	}
}
