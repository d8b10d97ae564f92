// Package alloc hands out node prefixes as re6st's registry does: a buddy
// allocator over the rows of the cert table, where every row is a block of
// the network (a binary-string prefix) that is free, reserved or held by a
// certificate, and the rows always tile the whole network exactly.
//
// Allocate picks the longest free block that fits (best fit) inside the
// node's community and splits it down to the requested length; Merge
// collapses free sibling blocks back into their parent. A full-length
// block whose host bits are all zero is reserved instead of handed out.
// Communities map a location (country, @continent, or *) to the leading
// bits of the prefixes allocated there.
package alloc
