package owner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/nhp/interop/internal/fhir"
)

// readSearchset decodes a FHIR search Bundle as a stream: fn gets each match's resource (entries
// of search mode include or outcome are skipped) as it is read, so memory holds one entry at
// a time. It returns the next link. An answer that is not a Bundle is ErrNotSearchset; read
// errors are returned as they are; fn's errors end the decoding and are returned as they are.
func readSearchset(r io.Reader, fn func(resource json.RawMessage) error) (next string, err error) {
	dec := json.NewDecoder(r)
	bad := func(err error) error {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		if errors.As(err, &se) || errors.As(err, &te) {
			return &notSearchset{err.Error()}
		}
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF // the Bundle is cut off: a read failure, retried
		}
		return err
	}
	if t, err := dec.Token(); err != nil {
		return "", bad(err)
	} else if t != json.Delim('{') {
		return "", &notSearchset{"not a JSON object"}
	}
	bundle := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", bad(err)
		}
		switch t {
		case "resourceType":
			var rt string
			if err := dec.Decode(&rt); err != nil {
				return "", bad(err)
			}
			if rt != "Bundle" {
				return "", &notSearchset{fmt.Sprintf("a %.40s", rt)}
			}
			bundle = true
		case "link":
			var links []fhir.BundleLink
			if err := dec.Decode(&links); err != nil {
				return "", bad(err)
			}
			for _, l := range links {
				if l.Relation == "next" {
					next = l.URL
				}
			}
		case "entry":
			t, err := dec.Token()
			if err != nil {
				return "", bad(err)
			}
			if t == nil {
				continue // "entry": null
			}
			if t != json.Delim('[') {
				return "", &notSearchset{"entry is not an array"}
			}
			for dec.More() {
				var e struct {
					Resource json.RawMessage `json:"resource"`
					Search   *struct {
						Mode string `json:"mode"`
					} `json:"search"`
				}
				if err := dec.Decode(&e); err != nil {
					return "", bad(err)
				}
				if (e.Search != nil && e.Search.Mode != "" && e.Search.Mode != "match") || len(e.Resource) == 0 || string(e.Resource) == "null" {
					continue
				}
				if err := fn(e.Resource); err != nil {
					return "", err
				}
			}
			if _, err := dec.Token(); err != nil {
				return "", bad(err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", bad(err)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return "", bad(err)
	}
	if !bundle {
		return "", &notSearchset{"no resourceType Bundle"}
	}
	return next, nil
}

// cappedReader reads at most left bytes of r, then fails with ErrPageTooLarge if r has more.
type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var probe [1]byte
		n, err := c.r.Read(probe[:])
		if n > 0 {
			return 0, ErrPageTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
