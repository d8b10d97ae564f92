// Package geoip locates IP addresses for the registry's communities and
// getCountry. It reads what re6st's registry reads, a GeoIP2 or GeoLite2
// Country database (.mmdb, through github.com/oschwald/maxminddb-golang),
// or a CSV file of "network,country,continent" lines (e.g.
// "2001:db8::/32,FR,EU"; the most specific network wins), a format easy
// to write by hand or export from any GeoIP database.
package geoip
