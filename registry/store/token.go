package store

import (
	"database/sql"
	"errors"
	"strings"
)

// Token is a registration token: whoever presents it gets a prefix of
// PrefixLen bits, and the certificate row keeps Email.
type Token struct {
	Token     string `json:"token"`
	Email     string `json:"email"`
	PrefixLen int    `json:"prefix_len"`
	Date      int64  `json:"date"` // Unix time of creation
}

// ErrTokenExists is returned when inserting a token that already exists.
var ErrTokenExists = errors.New("token already exists")

// InsertToken adds a token.
func (t *Tx) InsertToken(token Token) error {
	_, err := t.tx.Exec("INSERT INTO token VALUES (?, ?, ?, ?)", token.Token, token.Email, token.PrefixLen, token.Date)
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return ErrTokenExists
	}
	return err
}

// LookupToken returns the token row, or ok=false if there is none.
func (t *Tx) LookupToken(token string) (Token, bool, error) {
	var row Token
	err := t.tx.QueryRow("SELECT token, email, prefix_len, date FROM token WHERE token=?", token).
		Scan(&row.Token, &row.Email, &row.PrefixLen, &row.Date)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, false, nil
	}
	return row, err == nil, err
}

// DeleteToken removes a token; it reports whether it existed.
func (t *Tx) DeleteToken(token string) (bool, error) {
	result, err := t.tx.Exec("DELETE FROM token WHERE token=?", token)
	if err != nil {
		return false, err
	}
	n, err := result.RowsAffected()
	return n > 0, err
}

// DeleteTokensBefore removes the tokens created before date and returns
// how many went.
func (t *Tx) DeleteTokensBefore(date int64) (int64, error) {
	result, err := t.tx.Exec("DELETE FROM token WHERE date < ?", date)
	if err != nil {
		return 0, err
	}
	return result.RowsAffected()
}

// Tokens lists every token, oldest first.
func (t *Tx) Tokens() ([]Token, error) {
	rows, err := t.tx.Query("SELECT token, email, prefix_len, date FROM token ORDER BY date, token")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tokens []Token
	for rows.Next() {
		var row Token
		if err := rows.Scan(&row.Token, &row.Email, &row.PrefixLen, &row.Date); err != nil {
			return nil, err
		}
		tokens = append(tokens, row)
	}
	return tokens, rows.Err()
}
