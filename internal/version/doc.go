// Package version is what every command's --version prints: the module
// version and VCS revision the binary was built from, and the re6st
// protocol it speaks.
package version
