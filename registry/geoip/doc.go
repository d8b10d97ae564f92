// Package geoip locates IP addresses for the registry's communities and
// getCountry. It reads a CSV file of "network,country,continent" lines
// (e.g. "2001:db8::/32,FR,EU"), a format easy to export from any GeoIP
// database; the most specific network wins.
package geoip
