package peercache

import (
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"sync"

	"github.com/rs/zerolog"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// MaxPeers is the size limit of the cache (re6st's db_size).
const MaxPeers = 200

// Entry is one cached peer.
type Entry struct {
	Bits      string // the peer's prefix, re6st's binary string
	Addresses string // its address list, re6st's "ip,port,proto[,country];..." form
}

// Cache is an open peer cache. It is safe for concurrent use.
type Cache struct {
	db  *sql.DB
	log zerolog.Logger

	mu    sync.Mutex
	tried map[string]bool // blacklist until success; not persisted
}

var schema = []string{
	"CREATE TABLE IF NOT EXISTS peer (prefix TEXT PRIMARY KEY NOT NULL, address TEXT NOT NULL)",
	"CREATE TABLE IF NOT EXISTS config (name TEXT PRIMARY KEY NOT NULL, value)",
}

// Open opens the cache at path, creating it if needed. A file that is not
// a usable SQLite database is renamed to path+".bak" and a fresh cache is
// started, as re6st does.
func Open(path string, log zerolog.Logger) (*Cache, error) {
	db, err := open(path)
	if err != nil && corrupt(err) {
		log.Warn().Err(err).Str("path", path).Msg("peer cache is corrupt: renamed to .bak, starting afresh")
		if err := os.Rename(path, path+".bak"); err != nil {
			return nil, fmt.Errorf("peer cache %s: %w", path, err)
		}
		db, err = open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("peer cache %s: %w", path, err)
	}
	return &Cache{db: db, log: log, tried: map[string]bool{}}, nil
}

func open(path string) (*sql.DB, error) {
	query := url.Values{}
	query.Add("_pragma", "synchronous(OFF)")
	query.Add("_pragma", "journal_mode(MEMORY)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+query.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	var check string
	err = db.QueryRow("PRAGMA quick_check").Scan(&check)
	if err == nil && check != "ok" {
		err = errCorrupt
	}
	for _, statement := range schema {
		if err != nil {
			break
		}
		_, err = db.Exec(statement)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

var errCorrupt = errors.New("database integrity check failed")

// corrupt reports whether err means the file is not a sound database
// (SQLITE_CORRUPT or SQLITE_NOTADB), as opposed to, say, a permission
// problem, which must not cost the user their cache.
func corrupt(err error) bool {
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		code := coded.Code() & 0xff
		return code == 11 || code == 26
	}
	return errors.Is(err, errCorrupt)
}

// Close closes the database. Call Shrink first to keep the cache small
// across restarts, as re6st does on exit.
func (c *Cache) Close() error {
	return c.db.Close()
}

func checkBits(bits string) error {
	if !wire.ValidBits(bits) || len(bits) > 128 {
		return fmt.Errorf("peer cache: %q is not a binary prefix", bits)
	}
	return nil
}

// Put stores the addresses of a peer and clears its tried flag. When the
// cache is full, tried peers are evicted first, in random order, then
// untried ones. The empty prefix is the node itself: it does not count
// and is never evicted.
func (c *Cache) Put(bits string, addresses string) error {
	if err := checkBits(bits); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, known := c.get(bits); !known && bits != "" {
		if err := c.shrink(MaxPeers - 1); err != nil {
			return err
		}
	}
	if _, err := c.db.Exec("INSERT OR REPLACE INTO peer VALUES (?, ?)", bits, addresses); err != nil {
		return fmt.Errorf("peer cache: %w", err)
	}
	delete(c.tried, bits)
	return nil
}

// Get returns the addresses of a peer.
func (c *Cache) Get(bits string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.get(bits)
}

func (c *Cache) get(bits string) (string, bool) {
	var addresses string
	err := c.db.QueryRow("SELECT address FROM peer WHERE prefix = ?", bits).Scan(&addresses)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		c.log.Warn().Err(err).Msg("peer cache: read failed")
	}
	return addresses, err == nil
}

// peers returns every peer but the node itself, in random order, untried
// ones first. Locked.
func (c *Cache) peers() ([]Entry, error) {
	rows, err := c.db.Query("SELECT prefix, address FROM peer WHERE prefix != ''")
	if err != nil {
		return nil, fmt.Errorf("peer cache: %w", err)
	}
	defer rows.Close()
	var untried, tried []Entry
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.Bits, &e.Addresses); err != nil {
			return nil, fmt.Errorf("peer cache: %w", err)
		}
		if c.tried[e.Bits] {
			tried = append(tried, e)
		} else {
			untried = append(untried, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("peer cache: %w", err)
	}
	for _, list := range [][]Entry{untried, tried} {
		rand.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	}
	return append(untried, tried...), nil
}

// Random returns up to n peers in random order, untried ones before tried
// ones; with untriedOnly, tried ones are left out. Peers for which skip
// (if not nil) returns true are left out too.
func (c *Cache) Random(n int, untriedOnly bool, skip func(bits string) bool) ([]Entry, error) {
	c.mu.Lock()
	all, err := c.peers()
	tried := make(map[string]bool, len(c.tried))
	for bits := range c.tried {
		tried[bits] = true
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var picked []Entry
	for _, e := range all {
		if len(picked) >= n {
			break
		}
		if untriedOnly && tried[e.Bits] || skip != nil && skip(e.Bits) {
			continue
		}
		picked = append(picked, e)
	}
	return picked, nil
}

// MarkTried blacklists a peer until MarkWorked or Put.
func (c *Cache) MarkTried(bits string) {
	c.mu.Lock()
	c.tried[bits] = true
	c.mu.Unlock()
}

// MarkWorked clears a peer's tried flag.
func (c *Cache) MarkWorked(bits string) {
	c.mu.Lock()
	delete(c.tried, bits)
	c.mu.Unlock()
}

// Remove forgets a peer.
func (c *Cache) Remove(bits string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tried, bits)
	if _, err := c.db.Exec("DELETE FROM peer WHERE prefix = ?", bits); err != nil {
		return fmt.Errorf("peer cache: %w", err)
	}
	return nil
}

// Shrink keeps at most keep peers, evicting tried ones first, in random
// order. re6st shrinks its cache to client_count entries on exit.
func (c *Cache) Shrink(keep int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shrink(keep)
}

func (c *Cache) shrink(keep int) error {
	all, err := c.peers()
	if err != nil || len(all) <= keep {
		return err
	}
	for _, e := range all[max(keep, 0):] { // tried ones are last
		if _, err := c.db.Exec("DELETE FROM peer WHERE prefix = ?", e.Bits); err != nil {
			return fmt.Errorf("peer cache: %w", err)
		}
		delete(c.tried, e.Bits)
	}
	return nil
}

// Len returns the number of peers, the node itself not counted.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int
	if err := c.db.QueryRow("SELECT COUNT(*) FROM peer WHERE prefix != ''").Scan(&n); err != nil {
		c.log.Warn().Err(err).Msg("peer cache: count failed")
	}
	return n
}

// SetConfig stores a configuration value, e.g. the raw network-parameter
// document.
func (c *Cache) SetConfig(name string, value []byte) error {
	if _, err := c.db.Exec("INSERT OR REPLACE INTO config VALUES (?, ?)", name, value); err != nil {
		return fmt.Errorf("peer cache: %w", err)
	}
	return nil
}

// Config returns a configuration value stored by SetConfig.
func (c *Cache) Config(name string) ([]byte, bool, error) {
	var value []byte
	err := c.db.QueryRow("SELECT value FROM config WHERE name = ?", name).Scan(&value)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("peer cache: %w", err)
	}
	return value, true, nil
}
