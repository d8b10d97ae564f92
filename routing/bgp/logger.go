package bgp

import (
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/rs/zerolog"
)

// zlog gives GoBGP's logger interface a zerolog logger.
type zlog struct{ log zerolog.Logger }

func (l *zlog) event(e *zerolog.Event, msg string, fields gobgplog.Fields) {
	for k, v := range fields {
		e = e.Interface(k, v)
	}
	e.Msg(msg)
}

func (l *zlog) Panic(msg string, f gobgplog.Fields) { l.event(l.log.Error(), msg, f); panic(msg) }
func (l *zlog) Fatal(msg string, f gobgplog.Fields) { l.event(l.log.Error(), msg, f) }
func (l *zlog) Error(msg string, f gobgplog.Fields) { l.event(l.log.Error(), msg, f) }
func (l *zlog) Warn(msg string, f gobgplog.Fields)  { l.event(l.log.Warn(), msg, f) }
func (l *zlog) Info(msg string, f gobgplog.Fields)  { l.event(l.log.Info(), msg, f) }
func (l *zlog) Debug(msg string, f gobgplog.Fields) { l.event(l.log.Debug(), msg, f) }

// SetLevel and GetLevel map GoBGP's levels on zerolog's; the level is the
// logger's own, GoBGP only asks.
func (l *zlog) SetLevel(level gobgplog.LogLevel) {}
func (l *zlog) GetLevel() gobgplog.LogLevel {
	switch l.log.GetLevel() {
	case zerolog.TraceLevel, zerolog.DebugLevel:
		return gobgplog.DebugLevel
	case zerolog.InfoLevel:
		return gobgplog.InfoLevel
	case zerolog.WarnLevel:
		return gobgplog.WarnLevel
	default:
		return gobgplog.ErrorLevel
	}
}
