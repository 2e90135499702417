package owner

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// readSearchset streams matches only, finds the next link wherever it is, and tells an answer
// that is not a Bundle, or too large, from a failure to read.
func TestReadSearchset(t *testing.T) {
	t.Parallel()
	type result struct {
		resources []string
		next      string
		err       error
	}
	read := func(body string, limit int64) result {
		var r result
		r.next, r.err = readSearchset(&cappedReader{r: strings.NewReader(body), left: limit}, func(raw json.RawMessage) error {
			r.resources = append(r.resources, string(raw))
			return nil
		})
		return r
	}
	got := read(`{"resourceType":"Bundle","type":"searchset","total":3,"entry":[
		{"fullUrl":"x","resource":{"resourceType":"Observation","id":"a"},"search":{"mode":"match"}},
		{"resource":{"resourceType":"Patient","id":"p"},"search":{"mode":"include"}},
		{"resource":{"resourceType":"OperationOutcome"},"search":{"mode":"outcome"}},
		{"resource":{"resourceType":"Observation","id":"b"}},
		{"request":{"method":"GET"}}
	],"link":[{"relation":"self","url":"s"},{"relation":"next","url":"n?page=2"}]}`, 1<<20)
	require.NoError(t, got.err)
	require.Equal(t, []string{`{"resourceType":"Observation","id":"a"}`, `{"resourceType":"Observation","id":"b"}`}, got.resources)
	require.Equal(t, "n?page=2", got.next)

	got = read(`{"resourceType":"Bundle","type":"searchset","entry":null}`, 1<<20)
	require.NoError(t, got.err)
	require.Empty(t, got.resources)
	require.Empty(t, got.next)

	for name, body := range map[string]string{
		"an OperationOutcome": `{"resourceType":"OperationOutcome","issue":[]}`,
		"not JSON":            `<Bundle/>`,
		"an array":            `[]`,
		"entry not an array":  `{"resourceType":"Bundle","entry":{}}`,
		"no resourceType":     `{"entry":[]}`,
	} {
		require.ErrorIs(t, read(body, 1<<20).err, ErrNotSearchset, name)
	}
	require.ErrorIs(t, read(`{"resourceType":"Bundle","entry":[{"resource":{"id":"a"}}`, 1<<20).err, io.ErrUnexpectedEOF, "a cut-off answer is a read failure, retried")

	big := `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","id":"` + strings.Repeat("x", 1000) + `"}}]}`
	require.ErrorIs(t, read(big, 500).err, ErrPageTooLarge)
	require.NoError(t, read(big, int64(len(big))).err, "a page of exactly the limit is read")

	stop := errors.New("stop")
	_, err := readSearchset(strings.NewReader(`{"resourceType":"Bundle","entry":[{"resource":{"id":"a"}}]}`), func(json.RawMessage) error { return stop })
	require.ErrorIs(t, err, stop)
}
