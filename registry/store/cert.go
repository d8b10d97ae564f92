package store

import (
	"database/sql"
	"errors"
)

// Reserved is the cert column value of a block that is withheld from
// allocation (the all-zero host prefix).
const Reserved = "reserved"

// Block is a row of the cert table: a prefix that is free (Cert empty and
// not Allocated), reserved, or held by a certificate.
type Block struct {
	Prefix    string
	Email     string
	Cert      string
	Allocated bool // cert column is not NULL
}

// Issued reports whether the block holds a certificate.
func (b Block) Issued() bool { return b.Allocated && b.Cert != Reserved && b.Cert != "" }

func scanBlock(scanner interface{ Scan(...any) error }) (Block, error) {
	var block Block
	var email, cert sql.NullString
	if err := scanner.Scan(&block.Prefix, &email, &cert); err != nil {
		return Block{}, err
	}
	block.Email, block.Cert, block.Allocated = email.String, cert.String, cert.Valid
	return block, nil
}

// Block returns the row for prefix.
func (t *Tx) Block(prefix string) (Block, bool, error) {
	block, err := scanBlock(t.tx.QueryRow("SELECT prefix, email, cert FROM cert WHERE prefix=?", prefix))
	if errors.Is(err, sql.ErrNoRows) {
		return Block{}, false, nil
	}
	return block, err == nil, err
}

// Blocks lists every row of the cert table in prefix order.
func (t *Tx) Blocks() ([]Block, error) {
	return t.queryBlocks("SELECT prefix, email, cert FROM cert ORDER BY prefix")
}

// IssuedBlocks lists the rows that hold a certificate.
func (t *Tx) IssuedBlocks() ([]Block, error) {
	return t.queryBlocks("SELECT prefix, email, cert FROM cert WHERE cert IS NOT NULL AND cert != ? ORDER BY prefix", Reserved)
}

// BlocksByEmail lists the rows holding a certificate for email.
func (t *Tx) BlocksByEmail(email string) ([]Block, error) {
	return t.queryBlocks("SELECT prefix, email, cert FROM cert WHERE email=? AND cert IS NOT NULL AND cert != ? ORDER BY prefix", email, Reserved)
}

func (t *Tx) queryBlocks(query string, args ...any) ([]Block, error) {
	rows, err := t.tx.Query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var blocks []Block
	for rows.Next() {
		block, err := scanBlock(rows)
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, block)
	}
	return blocks, rows.Err()
}

// SetCertificate stores the certificate (PEM) and email of an allocated
// prefix.
func (t *Tx) SetCertificate(prefix, email, pem string) error {
	var emailValue any
	if email != "" {
		emailValue = email
	}
	return t.execOne("UPDATE cert SET email=?, cert=? WHERE prefix=?", emailValue, pem, prefix)
}

// ReplaceCertificate stores a new certificate for a prefix, keeping its
// email.
func (t *Tx) ReplaceCertificate(prefix, pem string) error {
	return t.execOne("UPDATE cert SET cert=? WHERE prefix=?", pem, prefix)
}

// FreeBlock marks a prefix free (its certificate and email are dropped).
func (t *Tx) FreeBlock(prefix string) error {
	return t.execOne("UPDATE cert SET email=NULL, cert=NULL WHERE prefix=?", prefix)
}

// The methods below are the operations the prefix allocator needs.

// LongestFree returns the longest free block that starts with head and is
// at most maxLen bits long.
func (t *Tx) LongestFree(head string, maxLen int) (string, bool, error) {
	var prefix string
	err := t.tx.QueryRow(`SELECT prefix FROM cert WHERE cert IS NULL AND length(prefix) <= ?
		AND substr(prefix, 1, ?) = ? ORDER BY length(prefix) DESC, prefix LIMIT 1`,
		maxLen, len(head), head).Scan(&prefix)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return prefix, err == nil, err
}

// Ancestor returns the block that contains head (a row whose prefix is a
// prefix of head) and whether it is allocated.
func (t *Tx) Ancestor(head string) (prefix string, allocated, found bool, err error) {
	var cert sql.NullString
	err = t.tx.QueryRow("SELECT prefix, cert FROM cert WHERE substr(?, 1, length(prefix)) = prefix", head).Scan(&prefix, &cert)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, false, nil
	}
	return prefix, cert.Valid, err == nil, err
}

// Contained reports whether some block lies strictly inside head.
func (t *Tx) Contained(head string) (bool, error) {
	var n int
	err := t.tx.QueryRow("SELECT count(*) FROM cert WHERE length(prefix) > ? AND substr(prefix, 1, ?) = ?", len(head), len(head), head).Scan(&n)
	return n > 0, err
}

// RenameBlock renames a row, keeping its content.
func (t *Tx) RenameBlock(from, to string) error {
	return t.execOne("UPDATE cert SET prefix=? WHERE prefix=?", to, from)
}

// InsertFree adds a free row.
func (t *Tx) InsertFree(prefix string) error {
	_, err := t.tx.Exec("INSERT INTO cert VALUES (?, NULL, NULL)", prefix)
	return err
}

// DeleteBlock removes a row.
func (t *Tx) DeleteBlock(prefix string) error {
	return t.execOne("DELETE FROM cert WHERE prefix=?", prefix)
}

// MarkReserved withholds a free block from allocation.
func (t *Tx) MarkReserved(prefix string) error {
	return t.execOne("UPDATE cert SET cert=? WHERE prefix=?", Reserved, prefix)
}

// FreeOfLength lists the free blocks of exactly length bits, in order.
func (t *Tx) FreeOfLength(length int) ([]string, error) {
	rows, err := t.tx.Query("SELECT prefix FROM cert WHERE cert IS NULL AND length(prefix) = ? ORDER BY prefix", length)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var prefixes []string
	for rows.Next() {
		var prefix string
		if err := rows.Scan(&prefix); err != nil {
			return nil, err
		}
		prefixes = append(prefixes, prefix)
	}
	return prefixes, rows.Err()
}

// LongestFreeLength returns the length of the longest free block shorter
// than below, or ok=false if there is none.
func (t *Tx) LongestFreeLength(below int) (int, bool, error) {
	var length sql.NullInt64
	err := t.tx.QueryRow("SELECT max(length(prefix)) FROM cert WHERE cert IS NULL AND length(prefix) < ?", below).Scan(&length)
	if err != nil || !length.Valid {
		return 0, false, err
	}
	return int(length.Int64), true, nil
}

// ErrNoRow is returned when a change that must touch exactly one row
// touched none.
var ErrNoRow = errors.New("no such row")

func (t *Tx) execOne(query string, args ...any) error {
	result, err := t.tx.Exec(query, args...)
	if err != nil {
		return err
	}
	n, err := result.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return ErrNoRow
	}
	return nil
}
