package atfile

import (
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"
)

// Ignored is an option of re6st that has no meaning here. It is accepted,
// so that an operator's option file keeps working, and logged once.
type Ignored struct {
	Name      string // long name
	Shorthand string // one letter, or ""
	Values    int    // 0: a switch; 1: one value; 2: two values (list Name in Spec.Arity)
	Why       string // why it has no meaning here
}

// AddIgnored registers the ignored options on fs, hidden from --help
// (the documentation lists them with their reason).
func AddIgnored(fs *pflag.FlagSet, options []Ignored) {
	for _, o := range options {
		usage := "ignored: " + o.Why
		if o.Values == 0 {
			fs.BoolP(o.Name, o.Shorthand, false, usage)
		} else {
			fs.StringArrayP(o.Name, o.Shorthand, nil, usage)
		}
		_ = fs.MarkHidden(o.Name)
	}
}

// WarnIgnored logs one warning for each ignored option that was given,
// however many times.
func WarnIgnored(fs *pflag.FlagSet, options []Ignored, log zerolog.Logger) {
	for _, o := range options {
		if fs.Changed(o.Name) {
			name := "--" + o.Name
			if o.Shorthand != "" {
				name = "-" + o.Shorthand + "/" + name
			}
			log.Warn().Str("option", name).Msg("ignored: " + o.Why)
		}
	}
}
