package wire

import (
	"encoding/binary"
	"errors"
)

// ErrIntegerOverflow is returned when a value does not fit in the 8-byte
// packed encoding.
var ErrIntegerOverflow = errors.New("integer too large for packed encoding")

// ErrTruncatedInteger is returned when a packed integer is cut short.
var ErrTruncatedInteger = errors.New("truncated packed integer")

// PackInteger encodes i on 1 to 8 bytes. The top 3 bits of the first byte
// give the number of bytes that follow; each length covers the range just
// above the previous one, so the encoding is unique and preserves order when
// compared as bytes.
func PackInteger(i uint64) ([]byte, error) {
	for n := range 8 {
		span := uint64(32) << (8 * n)
		if i < span {
			var buf [8]byte
			binary.BigEndian.PutUint64(buf[:], i+uint64(n)*span)
			return buf[7-n:], nil
		}
		i -= span
	}
	return nil, ErrIntegerOverflow
}

// UnpackInteger decodes a value written by PackInteger at the start of b and
// returns it with the number of bytes it used.
func UnpackInteger(b []byte) (value uint64, size int, err error) {
	if len(b) == 0 {
		return 0, 0, ErrTruncatedInteger
	}
	n := int(b[0] >> 5)
	if len(b) < n+1 {
		return 0, 0, ErrTruncatedInteger
	}
	var buf [8]byte
	copy(buf[7-n:], b[:n+1])
	raw := binary.BigEndian.Uint64(buf[:])
	value = raw - uint64(n)*(uint64(32)<<(8*n))
	for k := range n {
		value += uint64(32) << (8 * k)
	}
	return value, n + 1, nil
}
