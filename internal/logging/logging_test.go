package logging

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// A non-terminal gets JSON lines under auto and uncoloured text under text.
func TestFormats(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, Auto, zerolog.InfoLevel)
	require.NoError(t, err)
	l.Info().Str("k", "v").Msg("hello")
	l.Debug().Msg("below the level")
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	require.Equal(t, "hello", line["message"])
	require.Equal(t, 1, strings.Count(buf.String(), "\n"))

	buf.Reset()
	l, err = New(&buf, Text, zerolog.InfoLevel)
	require.NoError(t, err)
	l.Info().Str("k", "v").Msg("hello")
	require.Contains(t, buf.String(), "hello")
	require.Contains(t, buf.String(), "k=v")
	require.NotContains(t, buf.String(), "\x1b[", "colour codes on a non-terminal")

	_, err = New(&buf, "xml", zerolog.InfoLevel)
	require.ErrorContains(t, err, "--log-format")
}

// A pipe is not a terminal; standard error under `go test` may be either,
// so only the pipe is asserted.
func TestPipeIsNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	require.False(t, isTerminal(w))
}

// A pseudo-terminal is a terminal: auto writes console lines there.
func TestTerminalGetsText(t *testing.T) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	require.NoError(t, err)
	defer ptmx.Close()
	require.True(t, isTerminal(ptmx))
	w, err := writer(ptmx, Auto)
	require.NoError(t, err)
	require.IsType(t, zerolog.ConsoleWriter{}, w)
	w, err = writer(ptmx, JSON)
	require.NoError(t, err)
	require.Equal(t, ptmx, w)
}
