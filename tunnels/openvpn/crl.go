package openvpn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// WriteCRLDir makes dir hold exactly one empty file per revoked serial,
// named by the serial in decimal: the form openvpn's --crl-verify <dir>
// dir reads (Common.CRLDir). re6st's CRL is a list of serials in the
// network parameters, not an X.509 CRL the CA signed, so openvpn's PEM
// form does not fit. openvpn looks the directory up at each TLS
// handshake: a new serial refuses the next connection without a restart.
// Files for serials no longer listed are removed, others left alone.
func WriteCRLDir(dir string, serials []uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("crl directory: %w", err)
	}
	want := make(map[string]bool, len(serials))
	for _, s := range serials {
		want[strconv.FormatUint(s, 10)] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("crl directory: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if want[e.Name()] {
			delete(want, e.Name())
			continue
		}
		errs = append(errs, os.Remove(filepath.Join(dir, e.Name())))
	}
	for name := range want {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			err = f.Close()
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("crl directory %s: %w", dir, err)
	}
	return nil
}
