package connector_test

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/connector"
	"github.com/nhp/interop/internal/tlscert/tlscerttest"
)

func TestParseNormalises(t *testing.T) {
	t.Parallel()
	s, problems := connector.Parse(json.RawMessage(`{"maxMessageSize": 1048576, "readTimeoutSeconds": 30, "maxConnections": 8,
		"retry": {"maxAttempts": 3, "initialIntervalSeconds": 5, "maxIntervalSeconds": 60},
		"duplicatePolicy": "accept", "charset": "latin-1", "timeZone": "Europe/Paris"}`))
	require.Empty(t, problems)
	require.Equal(t, connector.Settings{
		MaxMessageSize: 1 << 20, ReadTimeoutSeconds: 30, MaxConnections: 8,
		Retry:           &connector.Retry{MaxAttempts: 3, InitialIntervalSeconds: 5, MaxIntervalSeconds: 60},
		DuplicatePolicy: connector.DuplicatePolicyAccept, Charset: "8859/1", TimeZone: "Europe/Paris",
	}, s)
	require.Equal(t, 30*time.Second, s.ReadTimeout())
	require.True(t, s.AcceptsDuplicates())

	// What is stored reads back as what was parsed.
	back, err := connector.Decode(s.JSON())
	require.NoError(t, err)
	require.Equal(t, s, back)

	for _, empty := range []string{``, `null`, ` `, `{}`} {
		s, problems := connector.Parse(json.RawMessage(empty))
		require.Empty(t, problems, empty)
		require.Equal(t, `{}`, string(s.JSON()), empty)
	}
}

func TestParseRefusesWithReasons(t *testing.T) {
	t.Parallel()
	cases := map[string]string{ //nolint:gosec // G101: a PEM block of two bytes to refuse, not a credential
		`[]`:                            "settings must be a JSON object",
		`"x"`:                           "settings must be a JSON object",
		`{"maxMessageSize": 0}`:         "settings.maxMessageSize must be an integer from 1 to 268435456",
		`{"maxMessageSize": "1024"}`:    "settings.maxMessageSize must be an integer",
		`{"readTimeoutSeconds": 1.5}`:   "settings.readTimeoutSeconds must be an integer from 1 to 86400",
		`{"maxConnections": 10001}`:     "settings.maxConnections must be an integer from 1 to 10000",
		`{"duplicatePolicy": "keep"}`:   `settings.duplicatePolicy "keep" is not one of reject, accept`,
		`{"duplicatePolicy": 1}`:        "settings.duplicatePolicy must be a string",
		`{"charset": "klingon"}`:        `settings.charset "klingon" is not a known character set`,
		`{"charset": "UNICODE UTF-16"}`: "cannot be decoded here",
		`{"timeZone": "Mars/Olympus"}`:  "settings.timeZone",
		`{"retry": 3}`:                  "settings.retry must be a JSON object",
		`{"retry": {"maxAttempts": 0}}`: "settings.retry.maxAttempts must be an integer from 1 to 1000",
		`{"retry": {"initialIntervalSeconds": 60, "maxIntervalSeconds": 10}}`: "maxIntervalSeconds must not be less than initialIntervalSeconds",
		`{"colour": "blue", "retry": {"jitter": 1}}`:                          `settings: unknown keys "colour", "retry.jitter" (known: `,
		`{"tls": true}`:                               "settings.tls must be an object",
		`{"tls": {"clientCA": 1}}`:                    "settings.tls.clientCA must be a string",
		`{"tls": {"clientCA": ""}}`:                   "settings.tls.clientCA is empty; leave it out",
		`{"tls": {"clientCA": "not pem"}}`:            "settings.tls.clientCA has text that is not a PEM block",
		`{"tls": {"certFile": "/etc/passwd"}}`:        `unknown keys "tls.certFile"`,
		`{"tls": {"clientCA": "` + keyPEM + `"}}`:     `settings.tls.clientCA holds a PEM "PRIVATE KEY" block`,
		`{"tls": {"clientCA": "` + badCertPEM + `"}}`: "settings.tls.clientCA certificate 1:",
	}
	for in, want := range cases {
		s, problems := connector.Parse(json.RawMessage(in))
		require.NotEmpty(t, problems, in)
		require.Contains(t, strings.Join(problems, "; "), want, in)
		require.Equal(t, connector.Settings{}, s, "nothing half-parsed is returned: %s", in)
	}
	// Every problem is reported at once, sorted, not only the first.
	_, problems := connector.Parse(json.RawMessage(`{"maxConnections": 0, "charset": "klingon", "x": 1}`))
	require.Len(t, problems, 3)
	require.IsIncreasing(t, problems)
}

// PEM blocks as JSON string contents (newlines escaped): a key where a certificate belongs,
// and a CERTIFICATE block whose bytes are not a certificate.
const (
	keyPEM     = `-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n`
	badCertPEM = `-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n`
)

func TestParseTLS(t *testing.T) {
	t.Parallel()
	ca := tlscerttest.Write(t, t.TempDir(), "ca", "Sender CA")
	caPEM, err := os.ReadFile(ca.CertFile)
	require.NoError(t, err)
	other := tlscerttest.Write(t, t.TempDir(), "other", "Other CA")
	otherPEM, err := os.ReadFile(other.CertFile)
	require.NoError(t, err)

	// {} turns TLS on without client certificates; null and absence leave it off.
	s, problems := connector.Parse(json.RawMessage(`{"tls": {}}`))
	require.Empty(t, problems)
	require.NotNil(t, s.TLS)
	pool, err := s.TLS.ClientPool()
	require.NoError(t, err)
	require.Nil(t, pool)
	s, problems = connector.Parse(json.RawMessage(`{"tls": null}`))
	require.Empty(t, problems)
	require.Nil(t, s.TLS)

	// A bundle of two CAs: both trusted, and it survives the round trip through a row.
	bundle, err := json.Marshal(map[string]any{"tls": map[string]string{"clientCA": string(caPEM) + "\n" + string(otherPEM)}})
	require.NoError(t, err)
	s, problems = connector.Parse(bundle)
	require.Empty(t, problems)
	back, err := connector.Decode(s.JSON())
	require.NoError(t, err)
	require.Equal(t, s, back)
	pool, err = back.TLS.ClientPool()
	require.NoError(t, err)
	for _, c := range []*x509.Certificate{ca.Cert, other.Cert} {
		_, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		require.NoError(t, err, c.Subject.String())
	}
}

func TestDecodeStoredRows(t *testing.T) {
	t.Parallel()
	s, err := connector.Decode(nil)
	require.NoError(t, err)
	require.Equal(t, connector.Settings{}, s)

	// A key a newer version wrote does not stop this one.
	s, err = connector.Decode([]byte(`{"maxConnections": 4, "laterSetting": true}`))
	require.NoError(t, err)
	require.Equal(t, 4, s.MaxConnections)

	_, err = connector.Decode([]byte(`[1]`))
	require.ErrorContains(t, err, "connector settings")
}

func TestInt(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{`1`: true, ` 5 `: true, `0`: false, `11`: false, `"3"`: false, `2.0`: false, `1e1`: false, ``: false, `null`: false} {
		_, ok := connector.Int(json.RawMessage(in), 1, 10)
		require.Equal(t, want, ok, in)
	}
}
