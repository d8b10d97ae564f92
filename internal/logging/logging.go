package logging

import (
	"fmt"
	"io"
	"os"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Formats of --log-format.
const (
	Text = "text" // human-readable console lines
	JSON = "json" // one JSON object per line
	Auto = "auto" // Text on a terminal, JSON otherwise
)

// FlagUsage is the help text of a --log-format flag.
const FlagUsage = "log format: text (console), json, or auto (text on a terminal, json otherwise)"

// New returns a logger writing to w in format at level. Text colours its
// output only when w is a terminal.
func New(w io.Writer, format string, level zerolog.Level) (zerolog.Logger, error) {
	out, err := writer(w, format)
	if err != nil {
		return zerolog.Logger{}, err
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger(), nil
}

// writer wraps w in a console writer for the text format.
func writer(w io.Writer, format string) (io.Writer, error) {
	tty := isTerminal(w)
	switch format {
	case Auto:
		if !tty {
			return w, nil
		}
	case Text:
	case JSON:
		return w, nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text, json or auto", format)
	}
	return zerolog.ConsoleWriter{Out: w, NoColor: !tty, TimeFormat: "15:04:05.000"}, nil
}

// isTerminal reports whether w is a file open on a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
