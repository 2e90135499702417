//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package auditlog

import (
	"errors"
	"os"
)

// lockDir is not available here: the spool needs flock(2). Run without a spool directory.
func lockDir(string) (*os.File, error) {
	return nil, errors.New("the audit spool needs flock(2), which this platform lacks; leave the spool directory unset")
}
