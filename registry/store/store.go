package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// The table definitions, spelled as re6st creates them. re6st refuses to
// open a database whose tables differ; so do we (ignoring whitespace).
var tables = []struct{ name, sql string }{
	{"config", createTable("config",
		"name TEXT PRIMARY KEY NOT NULL",
		"value")},
	{"token", createTable("token",
		"token TEXT PRIMARY KEY NOT NULL",
		"email TEXT NOT NULL",
		"prefix_len INTEGER NOT NULL",
		"date INTEGER NOT NULL")},
	{"cert", createTable("cert",
		"prefix TEXT PRIMARY KEY NOT NULL",
		"email TEXT",
		"cert TEXT")},
	{"crl", createTable("crl",
		"serial INTEGER PRIMARY KEY NOT NULL",
		"date INTEGER NOT NULL")},
}

func createTable(name string, columns ...string) string {
	return fmt.Sprintf("CREATE TABLE %s (%s)", name, "\n  "+strings.Join(columns, ",\n  "))
}

// Store is an open registry database.
type Store struct {
	db *sql.DB
}

// Open opens (creating if needed) the registry database at path. A new
// database gets the four tables and a single free block covering the
// whole network.
func Open(path string) (*Store, error) {
	query := url.Values{}
	query.Add("_pragma", "busy_timeout(10000)")
	query.Add("_pragma", "synchronous(FULL)")
	query.Add("_pragma", "foreign_keys(OFF)")
	query.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+query.Encode())
	if err != nil {
		return nil, err
	}
	// One connection: the registry serialises its writes anyway, and a
	// single connection makes every read see the last committed write.
	db.SetMaxOpenConns(1)
	s := &Store{db: db}
	if err := s.ensureSchema(); err != nil {
		db.Close()
		return nil, fmt.Errorf("registry database %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) ensureSchema() error {
	return s.Update(func(tx *Tx) error {
		for _, table := range tables {
			var existing string
			err := tx.tx.QueryRow("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", table.name).Scan(&existing)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				if _, err := tx.tx.Exec(table.sql); err != nil {
					return err
				}
				if table.name == "cert" {
					if _, err := tx.tx.Exec("INSERT INTO cert VALUES ('', NULL, NULL)"); err != nil {
						return err
					}
				}
			case err != nil:
				return err
			case strings.Join(strings.Fields(existing), " ") != strings.Join(strings.Fields(table.sql), " "):
				return fmt.Errorf("table %q exists with an unexpected schema: %s", table.name, existing)
			}
		}
		return nil
	})
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Update runs fn in one write transaction and commits it if fn returns nil.
func (s *Store) Update(fn func(*Tx) error) error {
	sqlTx, err := s.db.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	if err := fn(&Tx{tx: sqlTx}); err != nil {
		sqlTx.Rollback()
		return err
	}
	return sqlTx.Commit()
}

// View runs fn in a transaction that is always rolled back; fn must only
// read.
func (s *Store) View(fn func(*Tx) error) error {
	sqlTx, err := s.db.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer sqlTx.Rollback()
	return fn(&Tx{tx: sqlTx})
}

// Tx is a transaction on the registry database.
type Tx struct {
	tx *sql.Tx
}
