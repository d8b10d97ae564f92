package store

import (
	"database/sql"
	"errors"
	"fmt"
)

// Config keys used by re6st's registry.
const (
	ConfigPrefix     = "prefix"      // the registry node's own prefix (TEXT)
	ConfigVersion    = "version"     // signed network version (BLOB)
	ConfigLastConfig = "last_config" // JSON of the last published parameters
	ConfigSerial     = "serial"      // last certificate serial issued (INTEGER)
	ConfigValidUntil = "valid_until" // end of the Babel key rotation phase 1
)

// ConfigBabelHMAC are the three Babel key slots.
var ConfigBabelHMAC = [3]string{"babel_hmac0", "babel_hmac1", "babel_hmac2"}

func (t *Tx) configValue(name string) (any, bool, error) {
	var value any
	err := t.tx.QueryRow("SELECT value FROM config WHERE name=?", name).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return value, true, nil
}

// ConfigBytes returns a TEXT or BLOB config value and whether it is set.
func (t *Tx) ConfigBytes(name string) ([]byte, bool, error) {
	value, ok, err := t.configValue(name)
	if err != nil || !ok {
		return nil, ok, err
	}
	switch v := value.(type) {
	case nil:
		return nil, false, nil
	case []byte:
		return v, true, nil
	case string:
		return []byte(v), true, nil
	default:
		return nil, false, fmt.Errorf("config %q holds %T, expected text or bytes", name, value)
	}
}

// ConfigInt returns an INTEGER config value and whether it is set.
func (t *Tx) ConfigInt(name string) (int64, bool, error) {
	value, ok, err := t.configValue(name)
	if err != nil || !ok || value == nil {
		return 0, false, err
	}
	v, isInt := value.(int64)
	if !isInt {
		return 0, false, fmt.Errorf("config %q holds %T, expected an integer", name, value)
	}
	return v, true, nil
}

// SetConfig stores a config value; value is a string, []byte or int64.
func (t *Tx) SetConfig(name string, value any) error {
	_, err := t.tx.Exec("INSERT OR REPLACE INTO config VALUES (?, ?)", name, value)
	return err
}

// DeleteConfig removes a config value.
func (t *Tx) DeleteConfig(name string) error {
	_, err := t.tx.Exec("DELETE FROM config WHERE name=?", name)
	return err
}
