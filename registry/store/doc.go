// Package store keeps the registry's state in SQLite with re6st's schema
// (tables config, token, cert and crl), so that a registry.db written by
// re6st's Python registry opens as is and the other way round.
//
// Every change goes through Update, which runs one immediate transaction
// with synchronous=FULL: once Update returns nil the change is on disk, and
// a crash at any point leaves either all of it or none of it.
package store
