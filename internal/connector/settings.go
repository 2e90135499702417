// Package connector is the one schema of an InteropConnector's settings: the non-secret
// tuning an operator sets through the admin API and the MLLP listeners, the ingest path and
// the pipeline read. Parse validates what the admin API is given; Decode reads what a row
// holds. Both agree because they are the same type.
package connector

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

// Duplicate policies: what the ingest path does with a resend of a stored message (same
// MSH-3 and MSH-10) whose bytes differ.
const (
	// DuplicatePolicyReject answers AR and stores nothing new (the default).
	DuplicatePolicyReject = "reject"
	// DuplicatePolicyAccept stores it as a new message flagged as a duplicate of the original
	// and processes it in its own workflow.
	DuplicatePolicyAccept = "accept"
)

// Settings is a connector's settings object. A zero field is unset: every integer setting is
// at least 1, so 0 cannot be a chosen value.
type Settings struct {
	// MaxMessageSize bounds one MLLP frame, in bytes.
	MaxMessageSize int `json:"maxMessageSize,omitempty"`
	// ReadTimeoutSeconds closes a connection idle that long.
	ReadTimeoutSeconds int `json:"readTimeoutSeconds,omitempty"`
	// MaxConnections bounds the listener's concurrent connections.
	MaxConnections int `json:"maxConnections,omitempty"`
	// Retry is the pipeline's retry policy for whole tries of a message.
	Retry *Retry `json:"retry,omitempty"`
	// DuplicatePolicy is DuplicatePolicyReject (also when empty) or DuplicatePolicyAccept.
	DuplicatePolicy string `json:"duplicatePolicy,omitempty"`
	// Charset is the character set assumed when MSH-18 is silent, by its canonical name
	// (hl7v2.CanonicalCharset).
	Charset string `json:"charset,omitempty"`
	// TimeZone is the IANA zone of the facility's clocks, for v2 times without a UTC offset;
	// the Map step prefers it to the tenant's.
	TimeZone string `json:"timeZone,omitempty"`
	// TLS, when set, makes the listener speak MLLP over TLS (1.2 or later) with the process's
	// MLLP certificate; a plain-TCP sender is then refused at the handshake.
	TLS *TLS `json:"tls,omitempty"`
}

// TLS is a listener's TLS policy.
type TLS struct {
	// ClientCA is a PEM bundle of the certificate authorities whose certificates a sender must
	// present (mutual TLS); empty asks for no client certificate.
	ClientCA string `json:"clientCA,omitempty"`
}

// ClientPool is ClientCA as a pool, nil when ClientCA is empty.
func (t *TLS) ClientPool() (*x509.CertPool, error) {
	if t == nil || strings.TrimSpace(t.ClientCA) == "" {
		return nil, nil
	}
	rest := []byte(t.ClientCA)
	pool := x509.NewCertPool()
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("clientCA holds a PEM %q block; only CERTIFICATE blocks belong there", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("clientCA certificate %d: %w", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("clientCA has text that is not a PEM block")
	}
	return pool, nil
}

// Retry is a connector's policy for whole pipeline tries; unset fields take the workflow's
// defaults.
type Retry struct {
	MaxAttempts            int `json:"maxAttempts,omitempty"`
	InitialIntervalSeconds int `json:"initialIntervalSeconds,omitempty"`
	MaxIntervalSeconds     int `json:"maxIntervalSeconds,omitempty"`
}

// ReadTimeout is ReadTimeoutSeconds as a duration, 0 when unset.
func (s Settings) ReadTimeout() time.Duration {
	return time.Duration(s.ReadTimeoutSeconds) * time.Second
}

// AcceptsDuplicates reports whether a resend with other bytes is stored and processed.
func (s Settings) AcceptsDuplicates() bool { return s.DuplicatePolicy == DuplicatePolicyAccept }

// DefaultMaxConnections bounds a listener's concurrent connections when the connector's
// settings name no maxConnections: a sender that opens connections and sits on them fills
// its own connector's slots, not the process's file descriptors. A hospital system sends over
// one or a few connections; raise it per connector when a sender needs more.
const DefaultMaxConnections = 64

// Connections is MaxConnections, or DefaultMaxConnections when unset.
func (s Settings) Connections() int {
	if s.MaxConnections > 0 {
		return s.MaxConnections
	}
	return DefaultMaxConnections
}

// limits are the accepted ranges of the integer settings.
var limits = map[string][2]int64{
	"maxMessageSize":               {1, 256 << 20},
	"readTimeoutSeconds":           {1, 86400},
	"maxConnections":               {1, 10000},
	"retry.maxAttempts":            {1, 1000},
	"retry.initialIntervalSeconds": {1, 3600},
	"retry.maxIntervalSeconds":     {1, 86400},
}

// Known lists the settings Parse accepts, for messages.
const Known = "maxMessageSize, readTimeoutSeconds, maxConnections, retry {maxAttempts, initialIntervalSeconds, maxIntervalSeconds}, duplicatePolicy, charset, timeZone, tls {clientCA}"

// Parse validates a settings object as the admin API receives it and returns it with its
// charset in canonical form. Unknown keys are refused, named, rather than stored and silently
// ignored; problems are sorted, each a sentence naming its key. An absent or null object is
// the empty Settings.
func Parse(v json.RawMessage) (Settings, []string) {
	var s Settings
	if len(bytes.TrimSpace(v)) == 0 || string(bytes.TrimSpace(v)) == "null" {
		return s, nil
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(v, &doc) != nil || doc == nil {
		return s, []string{"settings must be a JSON object"}
	}
	p := parser{}
	for key, raw := range doc {
		switch key {
		case "maxMessageSize":
			s.MaxMessageSize = p.integer(key, raw)
		case "readTimeoutSeconds":
			s.ReadTimeoutSeconds = p.integer(key, raw)
		case "maxConnections":
			s.MaxConnections = p.integer(key, raw)
		case "duplicatePolicy":
			if x, ok := p.str(key, raw); ok {
				if x != DuplicatePolicyReject && x != DuplicatePolicyAccept {
					p.problemf("settings.duplicatePolicy %q is not one of reject, accept", x)
				}
				s.DuplicatePolicy = x
			}
		case "charset":
			if x, ok := p.str(key, raw); ok {
				s.Charset = p.charset(x)
			}
		case "timeZone":
			// The mapping's own loader decides, so that an accepted zone is one the Map step
			// reads times in.
			if x, ok := p.str(key, raw); ok {
				if _, err := mapping.LoadZone(x); err != nil {
					p.problemf("settings.timeZone %s", err)
				}
				s.TimeZone = x
			}
		case "retry":
			s.Retry = p.retry(raw)
		case "tls":
			s.TLS = p.tls(raw)
		default:
			p.unknown = append(p.unknown, strconv.Quote(key))
		}
	}
	if len(p.unknown) > 0 {
		sort.Strings(p.unknown)
		p.problemf("settings: unknown keys %s (known: %s)", strings.Join(p.unknown, ", "), Known)
	}
	if len(p.problems) > 0 {
		sort.Strings(p.problems)
		return Settings{}, p.problems
	}
	return s, nil
}

// JSON is the settings object as stored: known keys only, unset ones left out.
func (s Settings) JSON() []byte {
	out, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("connector settings do not encode: %v", err)) // plain fields: cannot happen
	}
	return out
}

// Decode reads the settings a connector row holds (written by the admin API through Parse,
// or by the service's own set-up). Keys it does not know are ignored: a row written by a newer
// version must not stop an older listener. A row that is not a JSON object is an error.
func Decode(raw []byte) (Settings, error) {
	var s Settings
	if len(bytes.TrimSpace(raw)) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return Settings{}, fmt.Errorf("connector settings: %w", err)
	}
	return s, nil
}

type parser struct {
	problems, unknown []string
}

func (p *parser) problemf(format string, args ...any) {
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

func (p *parser) integer(key string, raw json.RawMessage) int {
	lim := limits[key]
	n, ok := Int(raw, lim[0], lim[1])
	if !ok {
		p.problemf("settings.%s must be an integer from %d to %d", key, lim[0], lim[1])
		return 0
	}
	return int(n) // within limits, which fit an int of any size
}

func (p *parser) str(key string, raw json.RawMessage) (string, bool) {
	var x string
	if json.Unmarshal(raw, &x) != nil {
		p.problemf("settings.%s must be a string", key)
		return "", false
	}
	return x, true
}

// charset accepts what the parser decodes, by the parser's own lookup, and returns its
// canonical name.
func (p *parser) charset(x string) string {
	canonical, err := hl7v2.CanonicalCharset(x)
	switch {
	case errors.Is(err, hl7v2.ErrUnsupportedCharset):
		p.problemf("settings.charset %q is a known character set that cannot be decoded here "+
			"(UTF-16, UTF-32 and the multi-byte Asian sets of HL7 table 0211 are not supported)", x)
	case err != nil:
		p.problemf("settings.charset %q is not a known character set "+
			"(an HL7 table 0211 code such as \"8859/1\" or \"UNICODE UTF-8\", or e.g. \"windows-1252\")", x)
	}
	return canonical
}

// tls reads the tls object: {} turns TLS on, clientCA adds mutual TLS. null leaves it off.
func (p *parser) tls(raw json.RawMessage) *TLS {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(raw, &doc) != nil || doc == nil {
		p.problemf("settings.tls must be an object ({} for TLS, {\"clientCA\": PEM} for mutual TLS)")
		return nil
	}
	t := &TLS{}
	for key, v := range doc {
		if key != "clientCA" {
			p.unknown = append(p.unknown, strconv.Quote("tls."+key))
			continue
		}
		if x, ok := p.str("tls.clientCA", v); ok {
			t.ClientCA = x
			if strings.TrimSpace(x) == "" {
				p.problemf("settings.tls.clientCA is empty; leave it out for TLS without client certificates")
			} else if _, err := t.ClientPool(); err != nil {
				p.problemf("settings.tls.%s", err)
			}
		}
	}
	return t
}

func (p *parser) retry(raw json.RawMessage) *Retry {
	var doc map[string]json.RawMessage
	if json.Unmarshal(raw, &doc) != nil || doc == nil {
		p.problemf("settings.retry must be a JSON object")
		return nil
	}
	r := &Retry{}
	for key, v := range doc {
		switch key {
		case "maxAttempts":
			r.MaxAttempts = p.integer("retry."+key, v)
		case "initialIntervalSeconds":
			r.InitialIntervalSeconds = p.integer("retry."+key, v)
		case "maxIntervalSeconds":
			r.MaxIntervalSeconds = p.integer("retry."+key, v)
		default:
			p.unknown = append(p.unknown, strconv.Quote("retry."+key))
		}
	}
	if r.InitialIntervalSeconds > 0 && r.MaxIntervalSeconds > 0 && r.MaxIntervalSeconds < r.InitialIntervalSeconds {
		p.problemf("settings.retry.maxIntervalSeconds must not be less than initialIntervalSeconds")
	}
	return r
}

// Int reads an integer JSON number within [lo, hi]: not a quoted number, not a fraction.
func Int(v json.RawMessage, lo, hi int64) (int64, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] == '"' { // json.Number would take a quoted number
		return 0, false
	}
	var num json.Number
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	if d.Decode(&num) != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	return n, err == nil && n >= lo && n <= hi
}
