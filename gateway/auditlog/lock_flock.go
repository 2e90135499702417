//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package auditlog

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes the exclusive lock of a spool directory without waiting: an error when a
// running writer holds it. The lock lasts until the returned file is closed or the process
// ends, however it ends.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600) //nolint:gosec // G304: the lock file of a spool directory the operator configured
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil { //nolint:gosec // G115: a descriptor fits an int
		_ = f.Close()
		return nil, fmt.Errorf("spool %s is held by a running writer: %w", dir, err)
	}
	return f, nil
}
