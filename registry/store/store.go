package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver

	"github.com/re6st-bpf/re6st-bpf/internal/secfile"
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
	db        *sql.DB
	tightened []string
}

// Open opens (creating if needed) the registry database at path. A new
// database gets the four tables and a single free block covering the
// whole network. The database holds the Babel key and the tokens: it is
// made 0600, and so are its journals (SQLite gives them the database's
// mode); existing files with wider modes are tightened (see Tightened).
func Open(path string) (*Store, error) {
	var tightened []string
	for i, name := range []string{path, path + "-journal", path + "-wal", path + "-shm"} {
		tighten := secfile.Tighten
		if i == 0 {
			tighten = secfile.File
		}
		was, err := tighten(name)
		if err != nil {
			return nil, fmt.Errorf("registry database %s: %w", path, err)
		}
		if was != 0 {
			tightened = append(tightened, fmt.Sprintf("%s was readable by others (mode %04o): made %04o", name, was, was&^0o077))
		}
	}
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
	s := &Store{db: db, tightened: tightened}
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

// Tightened describes the files of the database whose modes Open had to
// tighten, for the caller to warn about.
func (s *Store) Tightened() []string { return s.tightened }

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
