package export

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kinds of export file, the manifest array each is listed in.
const (
	KindOutput  = "output"
	KindDeleted = "deleted"
	KindError   = "error"
)

// File is one file of a completed export, as BuildManifest takes it.
type File struct {
	// Kind is KindOutput, KindDeleted or KindError.
	Kind string
	// Type is the resource type in the file; it defaults to "Bundle" for deleted files and
	// "OperationOutcome" for error files.
	Type string
	// URL is the absolute URL the client downloads the file from.
	URL string
	// Count is the number of resources (lines) in the file.
	Count int64
}

// ManifestFile is one file item of a manifest.
type ManifestFile struct {
	Type string `json:"type"`
	URL  string `json:"url"`
	// Count is optional in the IG; it is left out when zero.
	Count int64 `json:"count,omitempty"`
}

// Manifest is the body of a completed export's status response (Bulk Data IG v2.0.0,
// "Response - Complete Status"). Output and Error are always arrays, empty rather than null;
// Deleted is left out when empty, as the IG allows.
type Manifest struct {
	// TransactionTime is a FHIR instant: the server's time when the export's queries ran.
	TransactionTime string `json:"transactionTime"`
	// Request is the full URL of the kick-off (for a POST, without its parameters).
	Request string `json:"request"`
	// RequiresAccessToken is false when files are fetched with signed URLs alone.
	RequiresAccessToken bool           `json:"requiresAccessToken"`
	Output              []ManifestFile `json:"output"`
	Deleted             []ManifestFile `json:"deleted,omitempty"`
	Error               []ManifestFile `json:"error"`
}

// BuildManifest lists files in the manifest array of their kind, ordered by resource type
// and, within a type, in the order given (part 1, 2… of a type stay in sequence), so that
// the same files give the same manifest. Files of an unknown kind are left out; the
// database's CHECK constraint keeps there being none.
func BuildManifest(transactionTime time.Time, request string, requiresAccessToken bool, files []File) Manifest {
	m := Manifest{
		TransactionTime:     formatInstant(transactionTime),
		Request:             request,
		RequiresAccessToken: requiresAccessToken,
		Output:              []ManifestFile{},
		Error:               []ManifestFile{},
	}
	for _, f := range files {
		item := ManifestFile{Type: f.Type, URL: f.URL, Count: f.Count}
		switch f.Kind {
		case KindOutput:
			m.Output = append(m.Output, item)
		case KindDeleted:
			if item.Type == "" {
				item.Type = "Bundle"
			}
			m.Deleted = append(m.Deleted, item)
		case KindError:
			if item.Type == "" {
				item.Type = "OperationOutcome"
			}
			m.Error = append(m.Error, item)
		}
	}
	for _, list := range [][]ManifestFile{m.Output, m.Deleted, m.Error} {
		slices.SortStableFunc(list, func(a, b ManifestFile) int { return strings.Compare(a.Type, b.Type) })
	}
	return m
}

// maxProgress is the IG's bound on X-Progress: "less than 100 characters".
const maxProgress = 99

// ProgressText is the X-Progress header of a running export, such as
// "42% complete, 3/7 types, 12345 resources": always ASCII and under 100 characters.
// Out-of-range counts are clamped; without a total it says only how many resources are done.
func ProgressText(doneTypes, totalTypes int, resources int64) string {
	resources = max(resources, 0)
	var s string
	if totalTypes <= 0 {
		s = fmt.Sprintf("in progress, %d resources", resources)
	} else {
		done := min(max(doneTypes, 0), totalTypes)
		pct := int(float64(done) / float64(totalTypes) * 100)
		if done < totalTypes {
			pct = min(pct, 99) // 100% only once every type is done
		}
		s = fmt.Sprintf("%d%% complete, %d/%d types, %d resources", pct, done, totalTypes, resources)
	}
	if len(s) > maxProgress {
		s = s[:maxProgress]
	}
	return s
}
