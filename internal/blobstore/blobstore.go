// Package blobstore opens the bucket Bulk Data export files are written to and served from,
// with every gocloud.dev/blob driver the service supports linked in.
package blobstore

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob://container
	_ "gocloud.dev/blob/fileblob"  // file:///dir
	_ "gocloud.dev/blob/gcsblob"   // gs://bucket
	_ "gocloud.dev/blob/s3blob"    // s3://bucket?region=…
)

// DefaultURL is the bucket under dataDir used when none is configured.
func DefaultURL(dataDir string) (string, error) {
	dir, err := filepath.Abs(filepath.Join(dataDir, "exports"))
	if err != nil {
		return "", fmt.Errorf("export directory: %w", err)
	}
	// Temporary files next to the final ones, so that the rename that publishes a file never
	// crosses file systems; no sidecar metadata files, which only the Content-Type would use.
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir), RawQuery: "create_dir=1&no_tmp_dir=1&metadata=skip"}).String(), nil
}

// Open opens the bucket at rawURL; empty means DefaultURL(dataDir).
func Open(ctx context.Context, rawURL, dataDir string) (*blob.Bucket, error) {
	if rawURL == "" {
		u, err := DefaultURL(dataDir)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Join(dataDir, "exports"), 0o750); err != nil {
			return nil, fmt.Errorf("export directory: %w", err)
		}
		rawURL = u
	}
	b, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("open export bucket %s: %w", redact(rawURL), err)
	}
	return b, nil
}

// redact drops a URL's query and user info, which may hold credentials.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
