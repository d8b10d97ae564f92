package geoip

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Location is a country and continent code pair, upper case.
type Location struct {
	Country, Continent string
}

// Database maps networks to locations.
type Database struct {
	entries []entry           // CSV: most specific first
	mmdb    *maxminddb.Reader // or a GeoIP2 database
}

type entry struct {
	network  netip.Prefix
	location Location
}

// mmdbMarker starts the metadata section at the end of every MaxMind DB.
var mmdbMarker = []byte("\xab\xcd\xefMaxMind.com")

// Load reads a database file: a MaxMind DB (GeoIP2/GeoLite2 Country or
// City, as re6st's GEOIP2_MMDB) or CSV, told apart by their content.
func Load(path string) (*Database, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var db *Database
	if bytes.Contains(data, mmdbMarker) {
		db, err = FromMMDB(data)
	} else {
		db, err = Parse(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("GeoIP database %s: %w", path, err)
	}
	return db, nil
}

// FromMMDB reads a MaxMind DB held in memory.
func FromMMDB(data []byte) (*Database, error) {
	reader, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, err
	}
	return &Database{mmdb: reader}, nil
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

// countryRecord is the part of a GeoIP2 Country record re6st reads.
type countryRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Continent struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
}

// Lookup returns the location of ip.
func (db *Database) Lookup(ip netip.Addr) (Location, bool) {
	ip = ip.Unmap()
	if db.mmdb != nil {
		var record countryRecord
		result := db.mmdb.Lookup(ip)
		if !result.Found() || result.Decode(&record) != nil || record.Country.ISOCode == "" {
			return Location{}, false
		}
		return Location{strings.ToUpper(record.Country.ISOCode), strings.ToUpper(record.Continent.Code)}, true
	}
	for _, e := range db.entries {
		if e.network.Contains(ip) {
			return e.location, true
		}
	}
	return Location{}, false
}
