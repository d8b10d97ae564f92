// Package logging builds the zerolog logger of the re6st-bpf binaries from
// their --log-format and level flags: coloured console output on a
// terminal, plain JSON lines elsewhere (journald, a pipe, a file), so that
// logs read by programs never carry ANSI colour codes.
package logging
