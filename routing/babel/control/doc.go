// Package control serves a Babel router's state on a local UNIX socket
// and reads it back: the protocol is one request line ("dump") answered by
// one JSON document. It also formats a dump as text in the style of
// babeld's own dump.
package control
