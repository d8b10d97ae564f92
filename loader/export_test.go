package loader

import (
	"os"
	"testing"
)

// UpSteps names the steps of Up, in order.
func UpSteps() []string {
	var names []string
	for _, s := range upSteps {
		names = append(names, s.name)
	}
	return names
}

// FailUpAfter makes Up fail with err right after the named step, until the
// test ends.
func FailUpAfter(t *testing.T, step string, err error) {
	upFault = func(s string) error {
		if s == step {
			return err
		}
		return nil
	}
	t.Cleanup(func() { upFault = nil })
}

// WithoutTCX makes the loader believe the kernel has no tcx, until the test
// ends.
func WithoutTCX(t *testing.T) {
	saved := haveTCX
	haveTCX = func() error { return ErrNoTCXForTest }
	t.Cleanup(func() { haveTCX = saved })
}

// ErrNoTCXForTest is what WithoutTCX's probe answers.
var ErrNoTCXForTest = errorString("tcx: not supported (test)")

type errorString string

func (e errorString) Error() string { return string(e) }

// StatePath and PinDir are where an instance's state and pins live.
func StatePath(instance string) string { return statePath(instance) }
func PinDir(instance string) string    { return pinDir(instance) }

// WriteState rewrites an instance's state file.
func WriteState(st *State) error { return writeState(st) }

// CrashUpAfter makes Up exit the process right after the named step, as a
// crash would: nothing is cleaned up.
func CrashUpAfter(step string) {
	upFault = func(s string) error {
		if s == step {
			os.Exit(3)
		}
		return nil
	}
}

// DecapAsBefore63 makes the data planes Up loads until the test ends
// decapsulate native traffic as on kernels before 6.3 (no DECAP_L3_IPV6).
func DecapAsBefore63(t *testing.T) {
	decapCompatForTest = true
	t.Cleanup(func() { decapCompatForTest = false })
}
