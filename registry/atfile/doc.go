// Package atfile expands re6st's "@file" options: an argument "@path" is
// replaced by the options in that file, one per line written "name
// value...", where name is a long option without "--" or a one-letter
// short option, "#" starts a comment and a line "@other" includes another
// file. It also joins the values of options that take several (re6st's
// "--ipv4 IP/N PLEN", "--req KEY VALUE") into one argument, so that the
// flag parser sees a single value.
package atfile
