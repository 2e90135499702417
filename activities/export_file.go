package activities

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/fhir"
)

func isBlobNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }

// fileWriter writes one task's lines into files of at most maxCount lines and about maxBytes
// (a file is closed after the line that reaches it, so one resource larger than maxBytes is a
// file of its own). A file is committed — closed, which publishes it atomically, and recorded
// as a BulkExportFile — before the cursor moves past its lines.
type fileWriter struct {
	a         *Activities
	job       db.BulkExportJob
	cur       *exportCursor
	typ, kind string
	// tag, when set, tells apart the files of tasks that export one type from several owners.
	tag                string
	maxBytes, maxCount int64

	w           *blob.Writer
	cancel      context.CancelFunc // aborts w
	buf         *bufio.Writer
	key         string
	count, size int64
	lastID      string
}

// newFileWriter writes typ's files of the job from cur on; tag, when set, keeps the files of
// one owner apart from another's.
func (a *Activities) newFileWriter(job db.BulkExportJob, cur *exportCursor, typ, tag string) *fileWriter {
	return &fileWriter{a: a, job: job, cur: cur, typ: typ, tag: tag,
		maxBytes: cmp.Or(a.ExportFileMaxBytes, DefaultExportFileMaxBytes), maxCount: cmp.Or(a.ExportFileMaxCount, DefaultExportFileMaxCount)}
}

func (f *fileWriter) open() bool { return f.w != nil }

func (f *fileWriter) write(ctx context.Context, id string, line []byte) error {
	if f.w == nil {
		name := f.typ
		if f.tag != "" {
			name += "-" + f.tag
		}
		f.key = fmt.Sprintf("%s/%s/%s-%05d.ndjson", f.job.ID, f.kind, name, f.cur.Part+1)
		wctx, cancel := context.WithCancel(ctx)
		w, err := f.a.Exports.NewWriter(wctx, f.key, &blob.WriterOptions{ContentType: fhir.NDJSONMediaType})
		if err != nil {
			cancel()
			return fmt.Errorf("create export file %s: %w", f.key, err)
		}
		f.w, f.cancel, f.count, f.size = w, cancel, 0, 0
		if f.buf == nil {
			f.buf = bufio.NewWriterSize(w, 256<<10)
		} else {
			f.buf.Reset(w)
		}
	}
	if _, err := f.buf.Write(line); err != nil {
		return fmt.Errorf("write export file %s: %w", f.key, err)
	}
	if err := f.buf.WriteByte('\n'); err != nil {
		return fmt.Errorf("write export file %s: %w", f.key, err)
	}
	f.count++
	f.size += int64(len(line)) + 1
	f.lastID = id
	if f.count >= f.maxCount || f.size >= f.maxBytes {
		return f.commit(ctx)
	}
	return nil
}

// discard drops the open file, if any, unpublished: a failed try leaves no partial file (the
// next try writes it again from the cursor).
func (f *fileWriter) discard() {
	if f.w == nil {
		return
	}
	f.cancel() // a blob.Writer whose context is done aborts at Close
	_ = f.w.Close()
	f.w = nil
}

// commit publishes the open file, if any, and moves the cursor past it.
func (f *fileWriter) commit(ctx context.Context) error {
	if f.w == nil {
		return nil
	}
	w, cancel := f.w, f.cancel
	f.w = nil
	defer cancel()
	if err := f.buf.Flush(); err != nil {
		cancel()
		_ = w.Close()
		return fmt.Errorf("write export file %s: %w", f.key, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("close export file %s: %w", f.key, err)
	}
	typ := f.typ
	if f.kind == "deleted" {
		typ = "Bundle" // deleted files hold transaction Bundles of DELETE entries
	}
	_, err := db.New(f.a.Pool).BulkExportFileInsert(ctx, db.BulkExportFileInsertParams{
		TenantID: f.job.TenantID, JobID: f.job.ID, Kind: f.kind, ResourceType: typ, BlobKey: f.key, Count: f.count, SizeBytes: f.size,
	})
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("record export file %s: %w", f.key, err)
	}
	f.a.countExportFile(f.job.TenantID, f.kind, typ, f.count)
	f.cur.Part++
	f.cur.After = f.lastID
	f.cur.Files++
	switch f.kind {
	case "output":
		f.cur.Resources += f.count
	case "deleted":
		f.cur.Deleted += f.count
	}
	return nil
}
