package auditlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nhp/interop/internal/audit"
)

// The spool: each Writer appends every record, as one JSON line, to a segment file in a
// directory of its own under SpoolDir (held by an exclusive flock on its lock file) before
// Record returns, and deletes the lines once written (a segment whose records are all written
// is removed, or truncated when it is the one being appended to). A write(2) that returned is
// in the kernel's page cache, so it survives the death of the process (kill -9, a panic, the
// OOM killer), though not of the machine: the spool is not fsynced.
//
// A directory whose lock can be taken belongs to no running Writer: the next Writer started
// on SpoolDir adopts it — appends its records to its own spool, queues them, removes it. A
// record adopted twice (a crash mid-adoption) is written once: inserts skip known ids.

// segmentBytes is the size past which the spool starts a new segment file.
const segmentBytes = 4 << 20

const (
	lockFile      = "lock"
	segmentSuffix = ".jsonl"
)

type spool struct {
	dir      string
	lock     *os.File
	segments []*segment // oldest first; the last one is appended to
	next     int
}

type segment struct {
	path    string
	f       *os.File // nil once the spool moved on to a newer segment
	size    int64
	pending int // records appended and not yet written to the database
}

// openSpool creates this process's spool directory under dir and returns the directories of
// writers that are gone, for adopt.
func openSpool(dir string, logger *slog.Logger) (*spool, []string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	own := filepath.Join(dir, "w"+strconv.FormatInt(time.Now().UnixNano(), 36)+"-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(own, 0o700); err != nil {
		return nil, nil, err
	}
	lock, err := lockDir(own)
	if err != nil {
		_ = os.RemoveAll(own)
		return nil, nil, err
	}
	s := &spool{dir: own, lock: lock}
	if err := s.rotate(); err != nil {
		_ = s.close(true)
		return nil, nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		_ = s.close(true)
		return nil, nil, err
	}
	var orphans []string
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if !e.IsDir() || path == own {
			continue
		}
		l, err := lockDir(path)
		if err != nil {
			continue // a running writer's, or not ours to read
		}
		// Locked again by adopt for as long as it reads; released here so that the lock is
		// taken by one open file only.
		_ = l.Close()
		orphans = append(orphans, path)
	}
	if len(orphans) > 0 {
		logger.Info("audit spool: found records of writers that stopped before writing them", "dirs", len(orphans))
	}
	return s, orphans, nil
}

// rotate starts a new segment; the current one stays until its records are written.
func (s *spool) rotate() error {
	if n := len(s.segments); n > 0 && s.segments[n-1].f != nil {
		cur := s.segments[n-1]
		if err := cur.f.Close(); err != nil {
			return err
		}
		cur.f = nil
	}
	s.next++
	path := filepath.Join(s.dir, fmt.Sprintf("%016d%s", s.next, segmentSuffix))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_EXCL, 0o600) //nolint:gosec // G304: a segment this spool names in its own directory
	if err != nil {
		return err
	}
	s.segments = append(s.segments, &segment{path: path, f: f})
	return nil
}

// append writes one record's line to the current segment (the caller holds the Writer's mutex).
func (s *spool) append(line []byte) (*segment, error) {
	cur := s.segments[len(s.segments)-1]
	if cur.size >= segmentBytes {
		if err := s.rotate(); err != nil {
			return nil, err
		}
		cur = s.segments[len(s.segments)-1]
	}
	buf := make([]byte, 0, len(line)+1)
	buf = append(append(buf, line...), '\n')
	n, err := cur.f.Write(buf)
	cur.size += int64(n)
	if err != nil {
		return nil, err
	}
	cur.pending++
	return cur, nil
}

// done marks one record of seg written.
func (s *spool) done(seg *segment) { seg.pending-- }

// compact removes segments whose records are all written, and empties the current one when
// all of its are.
func (s *spool) compact(logger *slog.Logger) {
	kept := s.segments[:0]
	for _, seg := range s.segments {
		switch {
		case seg.pending > 0:
			kept = append(kept, seg)
		case seg.f != nil: // the current segment
			if seg.size > 0 {
				if err := seg.f.Truncate(0); err != nil {
					logger.Warn("audit spool: truncate written segment", "error", err)
				} else {
					seg.size = 0
				}
			}
			kept = append(kept, seg)
		default:
			if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				logger.Warn("audit spool: remove written segment", "error", err)
				kept = append(kept, seg)
			}
		}
	}
	clear(s.segments[len(kept):])
	s.segments = kept
}

// close closes the spool; with clean (every record written), its directory is removed, else
// it stays for the next Writer to adopt.
func (s *spool) close(clean bool) error {
	var errs []error
	for _, seg := range s.segments {
		if seg.f != nil {
			errs = append(errs, seg.f.Close())
			seg.f = nil
		}
	}
	if clean {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	errs = append(errs, s.lock.Close())
	return errors.Join(errs...)
}

// drainSpoolDir locks dir (a dead writer's spool), calls fn with each record of its segments,
// oldest first, and removes it, returning how many records it passed on. A line that does not
// parse (a write cut short by a full disk) is skipped. A directory another writer adopted
// first is no error (0 records).
func drainSpoolDir(dir string, fn func(audit.Row) error) (int, error) {
	lock, err := lockDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer func() { _ = lock.Close() }() // releases the lock; nothing was written through it
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), segmentSuffix) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	n := 0
	for _, name := range names {
		if err := readSegment(filepath.Join(dir, name), func(row audit.Row) error {
			if err := fn(row); err != nil {
				return err
			}
			n++
			return nil
		}); err != nil {
			return n, err
		}
	}
	return n, os.RemoveAll(dir)
}

func readSegment(path string, fn func(audit.Row) error) error {
	f, err := os.Open(path) //nolint:gosec // G304: a file of our own spool directory
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read only
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var row audit.Row
		if json.Unmarshal(line, &row) != nil || row.ID == "" || row.Tenant == "" || len(row.Event) == 0 {
			continue
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return sc.Err()
}

func marshalRow(row audit.Row) ([]byte, error) {
	b, err := json.Marshal(row)
	if err != nil {
		return nil, fmt.Errorf("audit record %s: %w", row.ID, err)
	}
	return b, nil
}
