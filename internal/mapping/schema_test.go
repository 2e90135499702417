package mapping_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

// schemaFile is the official FHIR R4 (4.0.1) JSON Schema, gzipped; see testdata/README.md.
const (
	schemaFile = "testdata/fhir.schema.v4.json.gz"
	schemaURL  = "http://hl7.org/fhir/json-schema/4.0"
)

// TestResourcesValidateAgainstR4Schema checks every resource of every golden Bundle, and the
// Bundle itself, against the FHIR R4 JSON Schema: a check of shape (properties, types, codes of
// required bindings, primitive formats) that does not rely on our own understanding of FHIR.
// As the mapping grows, each new golden file is covered without a change here.
func TestResourcesValidateAgainstR4Schema(t *testing.T) {
	goldens, err := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	require.NoError(t, err)
	require.NotEmpty(t, goldens, "no golden Bundles to validate")
	for _, path := range goldens {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			require.NoError(t, err)
			violations, err := schemaViolations(raw)
			require.NoError(t, err)
			for _, v := range violations {
				t.Errorf("%s %s", path, v)
			}
		})
	}
}

// The check must be able to fail: each of these Bundles breaks the schema in one place.
func TestR4SchemaRejectsInvalidResources(t *testing.T) {
	bundle := func(bundleType, resource string) []byte {
		return []byte(`{"resourceType":"Bundle","type":"` + bundleType + `","entry":[{"fullUrl":"urn:uuid:1",` +
			`"resource":` + resource + `,"request":{"method":"PUT","url":"Patient?identifier=a%7Cb"}}]}`)
	}
	valid := `{"resourceType":"Patient","identifier":[{"system":"urn:id:H","value":"1"}],"gender":"female","birthDate":"1962-03-20"}`
	violations, err := schemaViolations(bundle("transaction", valid))
	require.NoError(t, err)
	require.Empty(t, violations, "the valid control case must pass, or the cases below prove nothing")

	for name, tc := range map[string]struct{ bundleType, resource, want string }{
		"gender is a number":    {"transaction", `{"resourceType":"Patient","gender":5}`, "entry[0] Patient: at '/gender'"},
		"gender outside enum":   {"transaction", `{"resourceType":"Patient","gender":"mal"}`, "entry[0] Patient: at '/gender'"},
		"unknown property":      {"transaction", `{"resourceType":"Patient","nickname":"Al"}`, "entry[0] Patient: at ''"},
		"month 13":              {"transaction", `{"resourceType":"Patient","birthDate":"1962-13-20"}`, "entry[0] Patient: at '/birthDate'"},
		"unknown resource type": {"transaction", `{"resourceType":"Patients"}`, "entry[0] Patients: unknown resourceType"},
		"bad Bundle type":       {"transactions", valid, "bundle Bundle: at '/type'"},
	} {
		t.Run(name, func(t *testing.T) {
			violations, err := schemaViolations(bundle(tc.bundleType, tc.resource))
			require.NoError(t, err)
			require.NotEmpty(t, violations)
			require.Contains(t, strings.Join(violations, "\n"), tc.want)
		})
	}
}

// schemaViolations validates a Bundle against the R4 schema and returns one line per violation,
// "entry[i] Type: at '/json/pointer': message" or "bundle Bundle: …". The Bundle is checked
// without its entries' resources and each resource on its own against its type's definition:
// against the schema's root, a bad resource only yields a "oneOf failed" over 146 types.
func schemaViolations(raw []byte) ([]string, error) {
	r4, err := loadR4Schema()
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("decode bundle: %w", err)
	}
	bundle, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("bundle is not a JSON object")
	}
	var resources []map[string]any
	entries, _ := bundle["entry"].([]any)
	for _, e := range entries {
		entry, _ := e.(map[string]any)
		res, _ := entry["resource"].(map[string]any)
		resources = append(resources, res)
		delete(entry, "resource") // the shell is validated without it; res keeps the value
	}

	var out []string
	check := func(where string, res map[string]any) {
		typ, _ := res["resourceType"].(string)
		sch, err := r4.forType(typ)
		if err != nil {
			out = append(out, fmt.Sprintf("%s %s: unknown resourceType: %v", where, typ, err))
			return
		}
		var ve *jsonschema.ValidationError
		if err := sch.Validate(res); errors.As(err, &ve) {
			for _, leaf := range leaves(ve) {
				out = append(out, fmt.Sprintf("%s %s: %s", where, typ, leaf.Error()))
			}
		} else if err != nil {
			out = append(out, fmt.Sprintf("%s %s: %v", where, typ, err))
		}
	}
	check("bundle", bundle)
	for i, res := range resources {
		if res != nil {
			check(fmt.Sprintf("entry[%d]", i), res)
		}
	}
	return out, nil
}

// leaves flattens a validation error to the failed keywords themselves; the inner nodes only
// say "validation failed" or "$ref".
func leaves(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(ve.Causes) == 0 {
		return []*jsonschema.ValidationError{ve}
	}
	var out []*jsonschema.ValidationError
	for _, c := range ve.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

// r4Schema is the compiled schema; per-type lookups reuse the compiler's cache.
type r4Schema struct {
	mu       sync.Mutex
	compiler *jsonschema.Compiler
}

func (r *r4Schema) forType(resourceType string) (*jsonschema.Schema, error) {
	if resourceType == "" || strings.ContainsAny(resourceType, "/#~") {
		return nil, fmt.Errorf("resourceType %q", resourceType)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.compiler.Compile(schemaURL + "#/definitions/" + resourceType)
}

// loadR4Schema decompresses and compiles the 3.4 MB schema once per test binary (about a
// second); every test then shares it.
var loadR4Schema = sync.OnceValues(func() (*r4Schema, error) {
	f, err := os.Open(schemaFile)
	if err != nil {
		return nil, fmt.Errorf("open R4 schema: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("gunzip R4 schema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(zr)
	if err != nil {
		return nil, fmt.Errorf("decode R4 schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("add R4 schema: %w", err)
	}
	// Compiling the root compiles every definition, so a broken schema fails here, once.
	if _, err := c.Compile(schemaURL); err != nil {
		return nil, fmt.Errorf("compile R4 schema: %w", err)
	}
	return &r4Schema{compiler: c}, nil
})
