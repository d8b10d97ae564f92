package store

// Revocation is a row of the crl table: a revoked certificate serial and
// the expiry date of that certificate.
type Revocation struct {
	Serial uint64 `json:"serial"`
	Date   int64  `json:"date"`
}

// Revoke records a revoked serial; revoking it again is a no-op.
func (t *Tx) Revoke(serial uint64, notAfter int64) error {
	_, err := t.tx.Exec("INSERT OR IGNORE INTO crl VALUES (?, ?)", int64(serial), notAfter)
	return err
}

// Revocations lists the crl table by serial.
func (t *Tx) Revocations() ([]Revocation, error) {
	rows, err := t.tx.Query("SELECT serial, date FROM crl ORDER BY serial")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []Revocation
	for rows.Next() {
		var serial, date int64
		if err := rows.Scan(&serial, &date); err != nil {
			return nil, err
		}
		list = append(list, Revocation{Serial: uint64(serial), Date: date})
	}
	return list, rows.Err()
}

// IsRevoked reports whether serial is in the crl table.
func (t *Tx) IsRevoked(serial uint64) (bool, error) {
	var n int
	err := t.tx.QueryRow("SELECT count(*) FROM crl WHERE serial=?", int64(serial)).Scan(&n)
	return n > 0, err
}

// PurgeRevocationsBefore removes the rows of certificates that expired
// before date: they can no longer be used anyway.
func (t *Tx) PurgeRevocationsBefore(date int64) (int64, error) {
	result, err := t.tx.Exec("DELETE FROM crl WHERE date < ?", date)
	if err != nil {
		return 0, err
	}
	return result.RowsAffected()
}
