// Package secfile keeps secrets private to their owner: files 0600 and
// directories 0700 whatever the umask, and existing files with wider modes
// tightened (the caller warns about them).
package secfile
