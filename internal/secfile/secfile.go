package secfile

import (
	"errors"
	"io/fs"
	"os"
)

// Private modes.
const (
	FileMode fs.FileMode = 0o600
	DirMode  fs.FileMode = 0o700
)

// File creates path as an empty 0600 file if it does not exist, or
// removes the group and other permissions of an existing one. It returns
// the mode the file had if it was tightened, 0 otherwise.
func File(path string) (fs.FileMode, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, FileMode)
	if err == nil {
		defer f.Close()
		return 0, f.Chmod(FileMode) // the umask may have removed more
	}
	if !errors.Is(err, fs.ErrExist) {
		return 0, err
	}
	return Tighten(path)
}

// Tighten removes the group and other permissions of an existing file
// (not a missing one). It returns the mode the file had if it changed, 0
// otherwise.
func Tighten(path string) (fs.FileMode, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil || info.Mode().Perm()&0o077 == 0 {
		return 0, err
	}
	return info.Mode().Perm(), os.Chmod(path, info.Mode().Perm()&^0o077)
}

// Dir creates the directory path, and its missing parents, 0700. An
// existing directory is left as it is; Dir returns its mode if group or
// others may read or enter it (for the caller to warn), 0 otherwise.
func Dir(path string) (fs.FileMode, error) {
	info, err := os.Stat(path)
	if err == nil {
		if !info.IsDir() {
			return 0, &fs.PathError{Op: "mkdir", Path: path, Err: errors.New("not a directory")}
		}
		if info.Mode().Perm()&0o077 != 0 {
			return info.Mode().Perm(), nil
		}
		return 0, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	if err := os.MkdirAll(path, DirMode); err != nil {
		return 0, err
	}
	return 0, os.Chmod(path, DirMode) // the umask may have removed more
}
