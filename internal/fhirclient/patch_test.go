package fhirclient_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/fhirclient"
)

// activeFalse is a FHIRPath Patch that marks a Patient inactive and links it to MRN-2.
const activeFalse = `{"resourceType":"Parameters","parameter":[
 {"name":"operation","part":[{"name":"type","valueCode":"add"},{"name":"path","valueString":"Patient"},{"name":"name","valueString":"active"},{"name":"value","valueBoolean":false}]},
 {"name":"operation","part":[{"name":"type","valueCode":"add"},{"name":"path","valueString":"Patient"},{"name":"name","valueString":"link"},{"name":"value","part":[
   {"name":"other","valueReference":{"identifier":{"system":"urn:oid:1.2.3","value":"MRN-2"}}},{"name":"type","valueCode":"replaced-by"}]}]}]}`

// A patch reaches an external owner as a read and a versioned update: the owner's record keeps
// everything the patch does not name; applied again, nothing is written; a concurrent writer
// makes it read and patch again; a missing record is ErrNoMatch and nothing is created.
func TestConditionalPatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o, c := newOwner(t)

	_, err := c.ConditionalPatch(ctx, "Patient", []byte(activeFalse), ident)
	require.True(t, errors.Is(err, fhirclient.ErrNoMatch), "%v", err)
	require.Equal(t, []string{"GET /fhir/Patient "}, o.requests(), "nothing created")

	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	_, err = c.ConditionalUpdate(ctx, "Patient", patientAt("Kept", t0), ident)
	require.NoError(t, err)
	o.requests()

	// A concurrent update lands between the read and the write: the If-Match write is
	// refused, and the patch is applied to the newer version.
	var once sync.Once
	o.before = func(r *http.Request) {
		if r.Method == http.MethodPut {
			once.Do(func() {
				_, err := o.st.ConditionalUpdate(context.Background(), newestTenant, patientAt("Concurrent", t0.Add(time.Hour)), ident)
				require.NoError(t, err)
			})
		}
	}
	res, err := c.ConditionalPatch(ctx, "Patient", []byte(activeFalse), ident)
	require.NoError(t, err)
	require.False(t, res.Unchanged)
	o.before = nil
	require.Equal(t, "Concurrent", o.family(t), "the concurrent update is not lost")
	reqs := o.requests()
	require.Len(t, reqs, 4, "%v", reqs)
	require.True(t, strings.HasPrefix(reqs[3], "PUT /fhir/Patient/"+res.ID+` W/"2"`), "%v", reqs)
	stored, err := o.st.Read(ctx, newestTenant, "Patient", res.ID)
	require.NoError(t, err)
	require.Contains(t, string(stored.Body), `"active": false`)
	require.Contains(t, string(stored.Body), `"replaced-by"`)

	again, err := c.ConditionalPatch(ctx, "Patient", []byte(activeFalse), ident)
	require.NoError(t, err)
	require.True(t, again.Unchanged)
	require.Equal(t, []string{"GET /fhir/Patient "}, o.requests(), "applied again: no write")

	_, err = c.ConditionalPatch(ctx, "Patient", []byte(`{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"move"}]}]}`), ident)
	require.ErrorIs(t, err, fhir.ErrInvalidResource)
}
