package geoip

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
)

// Location is a country and continent code pair, upper case.
type Location struct {
	Country, Continent string
}

// Database maps networks to locations.
type Database struct {
	entries []entry // most specific first
}

type entry struct {
	network  netip.Prefix
	location Location
}

// Load reads a CSV database file.
func Load(path string) (*Database, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	db, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("GeoIP database %s: %w", path, err)
	}
	return db, nil
}

// Parse reads "network,country,continent" records; lines starting with #
// are comments.
func Parse(r io.Reader) (*Database, error) {
	reader := csv.NewReader(r)
	reader.Comment = '#'
	reader.FieldsPerRecord = 3
	reader.TrimLeadingSpace = true
	db := &Database{}
	for {
		record, err := reader.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		network, err := netip.ParsePrefix(record[0])
		if err != nil {
			return nil, err
		}
		db.entries = append(db.entries, entry{network.Masked(), Location{strings.ToUpper(record[1]), strings.ToUpper(record[2])}})
	}
	sort.SliceStable(db.entries, func(i, j int) bool { return db.entries[i].network.Bits() > db.entries[j].network.Bits() })
	return db, nil
}

// Lookup returns the location of ip.
func (db *Database) Lookup(ip netip.Addr) (Location, bool) {
	ip = ip.Unmap()
	for _, e := range db.entries {
		if e.network.Contains(ip) {
			return e.location, true
		}
	}
	return Location{}, false
}
