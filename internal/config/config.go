// Package config reads the service configuration from the environment into one typed struct.
// Defaults live in one literal (Default); flags of the interop command override fields after.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nhp/interop/internal/netguard"
)

// Config is everything the interop binary needs to run any of its subcommands.
type Config struct {
	// DatabaseURL is the PostgreSQL URL of the service's own database (DATABASE_URL).
	DatabaseURL string
	// HTTPAddr serves FHIR (/fhir), the admin API (/admin), health and metrics.
	HTTPAddr string
	// PublicURL is the externally visible base of HTTPAddr, used in links (Location, paging).
	PublicURL string
	// TLSCertFile and TLSKeyFile (PEM; INTEROP_TLS_CERT, INTEROP_TLS_KEY), set together, make
	// HTTPAddr serve TLS 1.2+ with HTTP/2 and HSTS; the files are re-read when they change.
	TLSCertFile string
	TLSKeyFile  string
	// MLLPTLSCertFile and MLLPTLSKeyFile (PEM; INTEROP_MLLP_TLS_CERT, INTEROP_MLLP_TLS_KEY), set
	// together, are the certificate of MLLP listeners whose connector settings ask for TLS;
	// unset, those listeners use TLSCertFile and TLSKeyFile.
	MLLPTLSCertFile string
	MLLPTLSKeyFile  string
	// MLLPAddr is where `interop dev` opens the default inbound MLLP connector.
	MLLPAddr string
	// RetainProcessed is how long processed messages are kept; 0 keeps them forever. Failed and
	// dead-lettered messages are never pruned by this schedule.
	RetainProcessed time.Duration
	// MetricsAddr is where `interop worker` serves /metrics and /healthz (the gateway serves
	// them on HTTPAddr).
	MetricsAddr string
	// MLLPBindHost is the listen host of connectors that name none (0.0.0.0 in containers).
	MLLPBindHost string
	// DataDir holds export files, dev signing keys and logs.
	DataDir string
	// LogFormat is "text" or "json"; LogLevel is debug, info, warn or error.
	LogFormat string
	LogLevel  string

	// JWTSecret signs and verifies HS256 bearer tokens. Empty in dev means a key generated
	// once and kept under DataDir.
	JWTSecret string

	// JWKSURL, when set, verifies bearer tokens with an external issuer's published keys
	// (RS256/ES256) instead of JWTSecret (INTEROP_JWKS_URL); JWTIssuer and JWTAudience, when
	// set, must then match the tokens' iss and aud (INTEROP_JWT_ISSUER, INTEROP_JWT_AUDIENCE).
	JWKSURL     string
	JWTIssuer   string
	JWTAudience string

	// KeysetFile is a cleartext Tink JSON keyset of AEAD keys that seals connector credentials
	// (INTEROP_KEYSET_FILE). Empty means the development keyset under DataDir, which only
	// `interop dev` creates. (A KMS-wrapped keyset is the production next step.)
	KeysetFile string

	// MappingTenantsFile is a JSON file of tenant → mapping configuration (national profile
	// set, identifier systems, time zone; see mapping.LoadTenants) (INTEROP_MAPPING_TENANTS).
	// Empty maps every tenant with the base US Core/IPS profiles.
	MappingTenantsFile string

	// ExportBucketURL is where $export files are written: a gocloud.dev/blob URL (file://,
	// s3://, gs://, azblob://) (INTEROP_EXPORT_BUCKET). Empty means file://DataDir/exports.
	ExportBucketURL string
	// ExportRetention is how long a completed export's files are kept and its signed URLs
	// work (INTEROP_EXPORT_RETENTION).
	ExportRetention time.Duration
	// URLSigningKey (hex, at least 32 bytes) signs export file URLs and FHIR paging cursors
	// (INTEROP_URL_SIGNING_KEY). Every gateway replica must share it. Empty means a key derived
	// from the HS256 token secret, or a per-process key when tokens are verified by JWKS.
	URLSigningKey string
	// ExportFileMaxCount and ExportFileMaxBytes split an export's NDJSON into files
	// (INTEROP_EXPORT_FILE_MAX_COUNT, INTEROP_EXPORT_FILE_MAX_BYTES); 0 means the defaults,
	// 100,000 resources and 256 MiB. ExportParallelism bounds the resource types one export
	// reads at once (INTEROP_EXPORT_PARALLELISM); 0 means 4.
	ExportFileMaxCount int64
	ExportFileMaxBytes int64
	ExportParallelism  int

	// OwnerAllow is the operator's allow-list of owner addresses (INTEROP_OWNER_ALLOW): CIDRs,
	// addresses and host names (netguard.Parse) that routing rules may name although they are
	// loopback, private, link-local… Empty allows none of those; `interop dev` adds loopback.
	OwnerAllow string

	// DBMaxConns is the process's PostgreSQL connection budget, every pool included
	// (INTEROP_DB_MAX_CONNS); 0 means DefaultDBMaxConns, or DefaultDevDBMaxConns for a process
	// that embeds Temporal. DBBudget splits it.
	DBMaxConns int

	// AuditSpoolDir is where the gateway appends each audit record before it is written to
	// the database, so that records of a process that dies before writing them survive it
	// (INTEROP_AUDIT_SPOOL_DIR). Empty means DataDir/audit-spool; "off" keeps them in memory
	// only. Every process sharing the directory has a subdirectory of its own.
	AuditSpoolDir string

	Temporal Temporal
}

// Connection budgets when INTEROP_DB_MAX_CONNS is unset.
const (
	// DefaultDBMaxConns is a gateway's or worker's budget: its service pool alone.
	DefaultDBMaxConns = 20
	// DefaultDevDBMaxConns is `interop dev`'s: the service pool and the embedded Temporal
	// server's. Two of them and a `make test` fit in PostgreSQL's default max_connections
	// of 100.
	DefaultDevDBMaxConns = 40
	// minDevDBMaxConns is the smallest budget that leaves every pool of `interop dev`
	// enough to work with.
	minDevDBMaxConns = 16
)

// DBBudget is how one process splits its connection budget among its pools.
type DBBudget struct {
	// Total is the budget: the most connections the process opens.
	Total int
	// Service sizes the service pool (db.OpenWith).
	Service int32
	// Temporal and TemporalVisibility bound the embedded Temporal server's connections to
	// its persistence and visibility databases (its services' pools share each bound); zero
	// without an embedded server.
	Temporal           int
	TemporalVisibility int
}

// DBBudget splits DBMaxConns. Without an embedded Temporal server the service pool has it all.
// With one (`interop dev`) the service pool gets 45 %, the Temporal server's persistence 30 %
// and its visibility the rest (25 %): 40 → 18 service + 12 persistence + 10 visibility.
func (c Config) DBBudget(embeddedTemporal bool) (DBBudget, error) {
	total := c.DBMaxConns
	if !embeddedTemporal {
		if total == 0 {
			total = DefaultDBMaxConns
		}
		return DBBudget{Total: total, Service: int32(min(total, 10000))}, nil //nolint:gosec // bounded by the min
	}
	if total == 0 {
		total = DefaultDevDBMaxConns
	}
	if total < minDevDBMaxConns {
		return DBBudget{}, fmt.Errorf("INTEROP_DB_MAX_CONNS %d: interop dev with the embedded Temporal server needs at least %d",
			total, minDevDBMaxConns)
	}
	service := total * 45 / 100
	temporal := total * 30 / 100
	return DBBudget{Total: total, Service: int32(min(service, 10000)), //nolint:gosec // bounded by the min
		Temporal: temporal, TemporalVisibility: total - service - temporal}, nil
}

// Temporal says where workflows run: an external cluster (Address set) or, for `interop dev`
// and tests, an embedded server persisting to the same PostgreSQL cluster.
type Temporal struct {
	// Address of an external frontend (TEMPORAL_ADDRESS). Empty means embedded in `interop dev`.
	Address   string
	Namespace string
	TaskQueue string
	// The embedded server's frontend and UI addresses.
	EmbeddedFrontendAddr string
	EmbeddedUIAddr       string
	// EmbeddedDatabase and EmbeddedVisibilityDatabase are the embedded server's own databases
	// in the DATABASE_URL cluster.
	EmbeddedDatabase           string
	EmbeddedVisibilityDatabase string
	// HistoryShards is fixed when the embedded server's database is created.
	HistoryShards int32
	// DynamicConfigFile is an optional YAML file of Temporal dynamic config for the embedded server.
	DynamicConfigFile string
	// UIBaseURL is where support staff open workflow runs (links in the admin API).
	UIBaseURL string
	// UIReadOnly turns off the embedded UI's write actions (terminate, cancel, reset, signal,
	// update, start, batch): support staff can look, not act (INTEROP_TEMPORAL_UI_READONLY).
	UIReadOnly bool
	// UIInsecure lets the embedded UI, without OIDC sign-in, listen on an address other
	// machines reach (INTEROP_TEMPORAL_UI_INSECURE): an explicit acceptance of that risk.
	UIInsecure bool
	// OIDC, when its Issuer is set, signs support staff in to the embedded UI and makes the
	// embedded server check every caller's token.
	OIDC OIDC
}

// OIDC is the embedded Temporal UI's sign-in with an OpenID provider (INTEROP_OIDC_*). The UI
// runs the authorization code flow as the provider's confidential client; the embedded
// Temporal server verifies the ID token the UI forwards (issuer, audience ClientID, expiry,
// signature by the provider's published keys) and maps RolesClaim to a role: ReadRoles may
// look, WriteRoles may also act (terminate, cancel, reset, signal, update, start).
type OIDC struct {
	// Issuer is the provider's issuer URL; its discovery document is
	// Issuer/.well-known/openid-configuration (INTEROP_OIDC_ISSUER). Empty turns sign-in off.
	Issuer string
	// ClientID and ClientSecret are the UI's client at the provider (INTEROP_OIDC_CLIENT_ID,
	// INTEROP_OIDC_CLIENT_SECRET); ID tokens must name ClientID as their audience.
	ClientID     string
	ClientSecret string
	// CallbackURL is where the provider sends the browser back: the UI's URL as browsers reach
	// it + /auth/sso/callback (INTEROP_OIDC_CALLBACK_URL). Empty means it is derived from
	// INTEROP_TEMPORAL_UI_URL or the UI address (see Config.TemporalUICallbackURL).
	CallbackURL string
	// Scopes requested at sign-in; must include openid (INTEROP_OIDC_SCOPES, space or comma
	// separated).
	Scopes []string
	// RolesClaim names the ID token claim holding the user's roles or groups, a string or an
	// array of strings; a dotted path reaches into objects, e.g. realm_access.roles
	// (INTEROP_OIDC_ROLES_CLAIM).
	RolesClaim string
	// WriteRoles and ReadRoles are the claim values that grant the write and the read role
	// (INTEROP_OIDC_WRITE_ROLE, INTEROP_OIDC_READ_ROLE, comma separated, compared exactly).
	// Writers also read.
	WriteRoles []string
	ReadRoles  []string
}

// Enabled reports whether sign-in is on.
func (o OIDC) Enabled() bool { return o.Issuer != "" }

// OIDC defaults.
var (
	// DefaultOIDCScopes are requested at sign-in unless INTEROP_OIDC_SCOPES says otherwise.
	DefaultOIDCScopes = []string{"openid", "profile", "email"}
)

// DefaultOIDCRolesClaim is the ID token claim read for roles unless INTEROP_OIDC_ROLES_CLAIM
// names another.
const DefaultOIDCRolesClaim = "groups"

// Default is the configuration of a laptop running `interop dev`.
func Default() Config {
	return Config{
		DatabaseURL:     "postgres://postgres@127.0.0.1:5432/interop?sslmode=disable",
		HTTPAddr:        "127.0.0.1:8080",
		MLLPAddr:        "127.0.0.1:2575",
		MLLPBindHost:    "127.0.0.1",
		MetricsAddr:     "127.0.0.1:9090",
		DataDir:         ".data",
		LogFormat:       "json",
		LogLevel:        "info",
		ExportRetention: 24 * time.Hour,
		Temporal: Temporal{
			Namespace:                  "default",
			TaskQueue:                  "interop",
			EmbeddedFrontendAddr:       "127.0.0.1:7233",
			EmbeddedUIAddr:             "127.0.0.1:8233",
			EmbeddedDatabase:           "temporal",
			EmbeddedVisibilityDatabase: "temporal_visibility",
			HistoryShards:              4,
			OIDC: OIDC{
				Scopes:     slices.Clone(DefaultOIDCScopes),
				RolesClaim: DefaultOIDCRolesClaim,
			},
		},
	}
}

// FromEnv returns Default overridden by the environment. Unset variables keep their default;
// malformed ones are errors, never silently ignored.
func FromEnv() (Config, error) {
	return fromLookup(os.LookupEnv)
}

func fromLookup(lookup func(string) (string, bool)) (Config, error) {
	c := Default()
	var errs []error
	str := func(dst *string, key string) {
		if v, ok := lookup(key); ok && v != "" {
			*dst = v
		}
	}
	str(&c.DatabaseURL, "DATABASE_URL")
	str(&c.HTTPAddr, "INTEROP_HTTP_ADDR")
	str(&c.PublicURL, "INTEROP_PUBLIC_URL")
	str(&c.MLLPAddr, "INTEROP_MLLP_ADDR")
	str(&c.TLSCertFile, "INTEROP_TLS_CERT")
	str(&c.TLSKeyFile, "INTEROP_TLS_KEY")
	str(&c.MLLPTLSCertFile, "INTEROP_MLLP_TLS_CERT")
	str(&c.MLLPTLSKeyFile, "INTEROP_MLLP_TLS_KEY")
	str(&c.DataDir, "INTEROP_DATA_DIR")
	str(&c.MLLPBindHost, "INTEROP_MLLP_BIND_HOST")
	str(&c.MetricsAddr, "INTEROP_METRICS_ADDR")
	str(&c.LogFormat, "INTEROP_LOG_FORMAT")
	str(&c.LogLevel, "INTEROP_LOG_LEVEL")
	str(&c.JWTSecret, "INTEROP_JWT_SECRET")
	str(&c.JWKSURL, "INTEROP_JWKS_URL")
	str(&c.JWTIssuer, "INTEROP_JWT_ISSUER")
	str(&c.JWTAudience, "INTEROP_JWT_AUDIENCE")
	str(&c.KeysetFile, "INTEROP_KEYSET_FILE")
	str(&c.MappingTenantsFile, "INTEROP_MAPPING_TENANTS")
	str(&c.ExportBucketURL, "INTEROP_EXPORT_BUCKET")
	str(&c.URLSigningKey, "INTEROP_URL_SIGNING_KEY")
	str(&c.OwnerAllow, "INTEROP_OWNER_ALLOW")
	str(&c.AuditSpoolDir, "INTEROP_AUDIT_SPOOL_DIR")
	for key, dst := range map[string]*int64{"INTEROP_EXPORT_FILE_MAX_COUNT": &c.ExportFileMaxCount, "INTEROP_EXPORT_FILE_MAX_BYTES": &c.ExportFileMaxBytes} {
		if v, ok := lookup(key); ok && v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("%s %q: want a positive integer", key, v))
			}
			*dst = n
		}
	}
	if v, ok := lookup("INTEROP_DB_MAX_CONNS"); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 || n > 10000 {
			errs = append(errs, fmt.Errorf("INTEROP_DB_MAX_CONNS %q: want an integer from 2 to 10000", v))
		}
		c.DBMaxConns = n
	}
	if v, ok := lookup("INTEROP_EXPORT_PARALLELISM"); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			errs = append(errs, fmt.Errorf("INTEROP_EXPORT_PARALLELISM %q: want an integer from 1 to 64", v))
		}
		c.ExportParallelism = n
	}
	if v, ok := lookup("INTEROP_EXPORT_RETENTION"); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			errs = append(errs, fmt.Errorf("INTEROP_EXPORT_RETENTION %q: want a duration of at least 1m, like 24h", v))
		}
		c.ExportRetention = d
	}
	str(&c.Temporal.Address, "TEMPORAL_ADDRESS")
	str(&c.Temporal.Namespace, "TEMPORAL_NAMESPACE")
	str(&c.Temporal.TaskQueue, "INTEROP_TASK_QUEUE")
	str(&c.Temporal.EmbeddedFrontendAddr, "INTEROP_TEMPORAL_FRONTEND_ADDR")
	str(&c.Temporal.EmbeddedUIAddr, "INTEROP_TEMPORAL_UI_ADDR")
	str(&c.Temporal.DynamicConfigFile, "INTEROP_TEMPORAL_DYNAMIC_CONFIG")
	str(&c.Temporal.EmbeddedDatabase, "INTEROP_TEMPORAL_DB")
	str(&c.Temporal.EmbeddedVisibilityDatabase, "INTEROP_TEMPORAL_VISIBILITY_DB")
	str(&c.Temporal.UIBaseURL, "INTEROP_TEMPORAL_UI_URL")
	for key, dst := range map[string]*bool{"INTEROP_TEMPORAL_UI_READONLY": &c.Temporal.UIReadOnly, "INTEROP_TEMPORAL_UI_INSECURE": &c.Temporal.UIInsecure} {
		if v, ok := lookup(key); ok && v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %q: want true or false", key, v))
			}
			*dst = b
		}
	}
	str(&c.Temporal.OIDC.Issuer, "INTEROP_OIDC_ISSUER")
	str(&c.Temporal.OIDC.ClientID, "INTEROP_OIDC_CLIENT_ID")
	str(&c.Temporal.OIDC.ClientSecret, "INTEROP_OIDC_CLIENT_SECRET")
	str(&c.Temporal.OIDC.CallbackURL, "INTEROP_OIDC_CALLBACK_URL")
	str(&c.Temporal.OIDC.RolesClaim, "INTEROP_OIDC_ROLES_CLAIM")
	if v, ok := lookup("INTEROP_OIDC_SCOPES"); ok && v != "" {
		c.Temporal.OIDC.Scopes = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	}
	for key, dst := range map[string]*[]string{"INTEROP_OIDC_WRITE_ROLE": &c.Temporal.OIDC.WriteRoles, "INTEROP_OIDC_READ_ROLE": &c.Temporal.OIDC.ReadRoles} {
		if v, ok := lookup(key); ok && v != "" {
			*dst = splitRoles(v)
		}
	}
	if v, ok := lookup("INTEROP_TEMPORAL_HISTORY_SHARDS"); ok && v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			errs = append(errs, fmt.Errorf("INTEROP_TEMPORAL_HISTORY_SHARDS: %w", err))
		}
		c.Temporal.HistoryShards = int32(n)
	}
	if v, ok := lookup("INTEROP_RETENTION_PROCESSED"); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("INTEROP_RETENTION_PROCESSED %q: want a duration like 720h", v))
		}
		c.RetainProcessed = d
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate reports every problem at once, worded for the person who set the variable.
func (c Config) Validate() error {
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is empty"))
	} else if !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("DATABASE_URL must be a postgres:// URL"))
	}
	for key, addr := range map[string]string{"INTEROP_HTTP_ADDR": c.HTTPAddr, "INTEROP_MLLP_ADDR": c.MLLPAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", key, addr, err))
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("INTEROP_TLS_CERT and INTEROP_TLS_KEY must be set together (PEM certificate chain and its private key)"))
	}
	if (c.MLLPTLSCertFile == "") != (c.MLLPTLSKeyFile == "") {
		errs = append(errs, errors.New("INTEROP_MLLP_TLS_CERT and INTEROP_MLLP_TLS_KEY must be set together (PEM certificate chain and its private key)"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("INTEROP_LOG_FORMAT %q: want text or json", c.LogFormat))
	}
	if c.JWKSURL == "" && (c.JWTIssuer != "" || c.JWTAudience != "") {
		errs = append(errs, errors.New("INTEROP_JWT_ISSUER and INTEROP_JWT_AUDIENCE apply to tokens verified with INTEROP_JWKS_URL: set it too"))
	}
	if _, err := netguard.Parse(c.OwnerAllow); err != nil {
		errs = append(errs, fmt.Errorf("INTEROP_OWNER_ALLOW: %w", err))
	}
	if c.Temporal.HistoryShards < 1 {
		errs = append(errs, fmt.Errorf("INTEROP_TEMPORAL_HISTORY_SHARDS %d: want at least 1", c.Temporal.HistoryShards))
	}
	errs = append(errs, c.validateOIDC()...)
	if addr := c.Temporal.EmbeddedUIAddr; c.Temporal.Address == "" && addr != "" && !c.Temporal.UIInsecure &&
		!c.Temporal.OIDC.Enabled() && !loopbackAddr(addr) {
		errs = append(errs, fmt.Errorf("INTEROP_TEMPORAL_UI_ADDR %q is reachable from other machines, and the embedded Temporal UI "+
			"has no sign-in: anyone who reaches it can terminate, reset and signal workflow runs. Bind it to loopback "+
			"(127.0.0.1:8233) and reach it through a tunnel, set INTEROP_OIDC_ISSUER (and its companions) to require "+
			"sign-in, or set INTEROP_TEMPORAL_UI_INSECURE=true to accept that", addr))
	}
	if c.Temporal.Namespace == "" || c.Temporal.TaskQueue == "" {
		errs = append(errs, errors.New("TEMPORAL_NAMESPACE and INTEROP_TASK_QUEUE must not be empty"))
	}
	return errors.Join(errs...)
}

// validateOIDC checks the INTEROP_OIDC_* settings: all of them or none.
func (c Config) validateOIDC() []error {
	o := c.Temporal.OIDC
	if !o.Enabled() {
		if o.ClientID != "" || o.ClientSecret != "" || o.CallbackURL != "" || len(o.WriteRoles) > 0 || len(o.ReadRoles) > 0 {
			return []error{errors.New("INTEROP_OIDC_CLIENT_ID, INTEROP_OIDC_CLIENT_SECRET, INTEROP_OIDC_CALLBACK_URL, " +
				"INTEROP_OIDC_READ_ROLE and INTEROP_OIDC_WRITE_ROLE configure the Temporal UI's sign-in with " +
				"INTEROP_OIDC_ISSUER: set it too, or none of them")}
		}
		return nil
	}
	var errs []error
	if c.Temporal.Address != "" {
		errs = append(errs, errors.New("INTEROP_OIDC_ISSUER protects the embedded Temporal server and UI of interop dev; "+
			"with TEMPORAL_ADDRESS the external cluster and its UI have their own sign-in: unset one of them"))
	}
	if err := checkFetchURL(o.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("INTEROP_OIDC_ISSUER: %w", err))
	}
	if o.ClientID == "" || o.ClientSecret == "" {
		errs = append(errs, errors.New("INTEROP_OIDC_ISSUER needs INTEROP_OIDC_CLIENT_ID and INTEROP_OIDC_CLIENT_SECRET: "+
			"the Temporal UI's (confidential) client registered at the provider"))
	}
	if len(o.ReadRoles) == 0 && len(o.WriteRoles) == 0 {
		errs = append(errs, errors.New("INTEROP_OIDC_ISSUER needs INTEROP_OIDC_READ_ROLE or INTEROP_OIDC_WRITE_ROLE "+
			"(values of the INTEROP_OIDC_ROLES_CLAIM claim): without either, nobody who signs in may see anything"))
	}
	if host, _, err := net.SplitHostPort(c.Temporal.EmbeddedFrontendAddr); err == nil && host != "" && !loopbackHost(host) {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("INTEROP_TEMPORAL_FRONTEND_ADDR %q: with INTEROP_OIDC_ISSUER the embedded frontend "+
				"listens on loopback or on all interfaces (0.0.0.0:7233): on one specific address the server's internal "+
				"services, which trust every caller, would listen there too", c.Temporal.EmbeddedFrontendAddr))
		}
	}
	if o.RolesClaim == "" {
		errs = append(errs, errors.New("INTEROP_OIDC_ROLES_CLAIM is empty"))
	}
	if !slices.Contains(o.Scopes, "openid") {
		errs = append(errs, fmt.Errorf("INTEROP_OIDC_SCOPES %q: must include openid", strings.Join(o.Scopes, " ")))
	}
	if o.CallbackURL == "" && c.Temporal.UIBaseURL == "" && c.Temporal.EmbeddedUIAddr != "" && !browsableHost(c.Temporal.EmbeddedUIAddr) {
		errs = append(errs, fmt.Errorf("INTEROP_TEMPORAL_UI_ADDR %q names no host a browser can return to after sign-in: "+
			"set INTEROP_OIDC_CALLBACK_URL (https://<the UI as browsers reach it>/auth/sso/callback) or INTEROP_TEMPORAL_UI_URL",
			c.Temporal.EmbeddedUIAddr))
	} else if cb := c.TemporalUICallbackURL(); cb != "" {
		u, err := url.Parse(cb)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			errs = append(errs, fmt.Errorf("INTEROP_OIDC_CALLBACK_URL %q: want an absolute http(s) URL", cb))
		case !strings.HasSuffix(u.Path, "/auth/sso/callback") && !strings.HasSuffix(u.Path, "/auth/sso_callback"):
			errs = append(errs, fmt.Errorf("INTEROP_OIDC_CALLBACK_URL %q: the UI receives the provider's answer at "+
				"<UI URL>/auth/sso/callback", cb))
		}
	}
	return errs
}

// TemporalUICallbackURL is where the OpenID provider sends the browser back after sign-in:
// INTEROP_OIDC_CALLBACK_URL, else the UI's URL + /auth/sso/callback. Empty without sign-in or
// without a UI.
func (c Config) TemporalUICallbackURL() string {
	o := c.Temporal.OIDC
	if !o.Enabled() {
		return ""
	}
	if o.CallbackURL != "" {
		return o.CallbackURL
	}
	if ui := c.TemporalUIURL(); ui != "" {
		return ui + "/auth/sso/callback"
	}
	return ""
}

// TemporalUISignInInClear reports whether the embedded UI's sign-in returns to another machine
// over plain HTTP: its cookies cannot be Secure and its tokens cross the network in clear.
func (c Config) TemporalUISignInInClear() bool {
	u, err := url.Parse(c.TemporalUICallbackURL())
	return err == nil && u.Scheme == "http" && !loopbackHost(u.Hostname())
}

// checkFetchURL wants an absolute https URL, or http on a loopback host (a provider on the
// same machine): keys and endpoints fetched in clear text over a network could be replaced.
func checkFetchURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: want an absolute https URL without query", s)
	}
	if u.Scheme == "https" || (u.Scheme == "http" && loopbackHost(u.Hostname())) {
		return nil
	}
	return fmt.Errorf("%q: want https (http only on a loopback address)", s)
}

// browsableHost reports whether host:port names a host a browser can open: not empty and not
// a wildcard address.
func browsableHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsUnspecified()
}

// splitRoles splits a comma separated list of role names (which may hold spaces), trimmed,
// dropping empty items.
func splitRoles(s string) []string {
	var roles []string
	for r := range strings.SplitSeq(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	return roles
}

// loopbackAddr reports whether host:port listens on loopback only: localhost or a loopback
// IP. An empty host (all interfaces) or any other name is not.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && loopbackHost(host)
}

// loopbackHost reports whether host is localhost or a loopback IP.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// BaseURL is the public base of the HTTP gateway, without a trailing slash.
func (c Config) BaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	if c.TLS() {
		return "https://" + c.HTTPAddr
	}
	return "http://" + c.HTTPAddr
}

// TLS reports whether the HTTP listener serves TLS.
func (c Config) TLS() bool { return c.TLSCertFile != "" && c.TLSKeyFile != "" }

// TemporalUIURL is where links to workflow runs point; empty when unknown.
func (c Config) TemporalUIURL() string {
	if c.Temporal.UIBaseURL != "" {
		return strings.TrimRight(c.Temporal.UIBaseURL, "/")
	}
	if c.Temporal.Address == "" && c.Temporal.EmbeddedUIAddr != "" {
		return "http://" + c.Temporal.EmbeddedUIAddr
	}
	return ""
}

// Path resolves name inside DataDir.
func (c Config) Path(name string) string {
	return filepath.Join(c.DataDir, name)
}

// AuditSpool is the audit spool directory (AuditSpoolDir); "" when it is off.
func (c Config) AuditSpool() string {
	switch c.AuditSpoolDir {
	case "off":
		return ""
	case "":
		return c.Path("audit-spool")
	}
	return c.AuditSpoolDir
}

// ShutdownGrace is how long a stopping process lets in-flight work finish.
const ShutdownGrace = 15 * time.Second
