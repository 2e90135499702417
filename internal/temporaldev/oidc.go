package temporaldev

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"go.temporal.io/server/common/authorization"

	"github.com/nhp/interop/internal/auth"
)

// OIDC turns on sign-in for the Web UI and authorization in the server. The UI signs users in
// with the provider (the authorization code flow, as the provider's confidential client) and
// forwards their ID token to the frontend; the frontend verifies it against the provider's
// published keys and maps its roles claim to a role on the namespace. Without a valid token a
// call is refused, whoever makes it: the UI, the temporal CLI, an SDK client. Clients from
// Server.NewClient and Server.ClientOptions carry the process's own credential instead, and
// the server's own system workers reach the history through an internal frontend on the
// internal address.
type OIDC struct {
	// Issuer is the provider's issuer URL (https, or http on a loopback host); its discovery
	// document is Issuer/.well-known/openid-configuration.
	Issuer string
	// ClientID and ClientSecret are the UI's client at the provider. ID tokens must name
	// ClientID as their audience.
	ClientID     string
	ClientSecret string
	// Scopes requested at sign-in; nil means openid, profile and email.
	Scopes []string
	// CallbackURL is the UI's URL as browsers reach it + /auth/sso/callback, registered at the
	// provider. Empty means the UI's own listen URL + /auth/sso/callback.
	CallbackURL string
	// RolesClaim names the ID token claim holding the user's roles or groups (a string or an
	// array of strings); a dotted path reaches into objects, e.g. realm_access.roles.
	RolesClaim string
	// ReadRoles grant the reader role on the namespace: list, describe, query, read histories.
	// WriteRoles grant the writer role, which also reads: start, signal, update, cancel,
	// terminate, reset, delete, batch and schedule actions (and polling its task queues).
	// Both also grant reading cluster-wide information (namespaces, cluster info).
	ReadRoles  []string
	WriteRoles []string
	// HTTP fetches the discovery document and the key set; nil means a client with a 10 s
	// timeout.
	HTTP *http.Client
}

// Principal subjects and kinds the claim mapper assigns.
const (
	// serviceSubject is the subject of the process's own clients.
	serviceSubject = "interop-service"
	authTypeOIDC   = "oidc"
	authTypeSelf   = "interop-service-token"
)

// errNoBearer is a call whose authorization header is not a bearer token.
var errNoBearer = errors.New("authorization header is not a bearer token")

// claimMapper is the frontend's authorization.ClaimMapper with OIDC on: the process's own
// token maps to the system admin role, a valid ID token to the role its roles claim grants on
// the namespace, anything else to an error (the frontend refuses the call).
type claimMapper struct {
	idTokens  *auth.JWKS
	namespace string
	rolesPath []string
	read      []string
	write     []string
	// self is the SHA-256 of the process's own token, compared in constant time.
	self   [sha256.Size]byte
	logger *slog.Logger
}

var _ authorization.ClaimMapper = (*claimMapper)(nil)

// newClaimMapper discovers the provider and fetches its keys once, so that a wrong issuer is
// an error at start rather than a refusal of every call.
func newClaimMapper(ctx context.Context, o *OIDC, namespace, selfToken string, logger *slog.Logger) (*claimMapper, error) {
	p, err := auth.DiscoverOIDC(ctx, o.Issuer, o.HTTP)
	if err != nil {
		return nil, err
	}
	keys, err := auth.NewJWKS(ctx, auth.JWKSConfig{
		URL: p.JWKSURI, Issuer: o.Issuer, Audience: o.ClientID, HTTP: o.HTTP, Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("oidc issuer %s: %w", o.Issuer, err)
	}
	return &claimMapper{
		idTokens:  keys,
		namespace: namespace,
		rolesPath: strings.Split(o.RolesClaim, "."),
		read:      slices.Clone(o.ReadRoles),
		write:     slices.Clone(o.WriteRoles),
		self:      sha256.Sum256([]byte(selfToken)),
		logger:    logger,
	}, nil
}

// GetClaims implements authorization.ClaimMapper. The frontend calls it only for calls that
// carry an authorization header; a call without one has no claims, which the default
// authorizer refuses (health checks aside).
func (m *claimMapper) GetClaims(ai *authorization.AuthInfo) (*authorization.Claims, error) {
	token, ok := bearerToken(ai.AuthToken)
	if !ok {
		return nil, errNoBearer
	}
	if digest := sha256.Sum256([]byte(token)); subtle.ConstantTimeCompare(digest[:], m.self[:]) == 1 {
		return &authorization.Claims{Subject: serviceSubject, System: authorization.RoleAdmin, AuthType: authTypeSelf}, nil
	}
	claims := jwt.MapClaims{}
	if err := m.idTokens.Parse(token, claims); err != nil {
		return nil, err
	}
	sub, _ := claims["sub"].(string)
	c := &authorization.Claims{Subject: sub, AuthType: authTypeOIDC}
	if role := m.role(claims); role != authorization.RoleUndefined {
		// Cluster-wide reads (the namespace list, cluster info) let the UI find its way.
		c.System = authorization.RoleReader
		c.Namespaces = map[string]authorization.Role{m.namespace: role}
	} else {
		m.logger.Debug("temporal: a signed-in caller has no role", "subject", sub, "roles_claim", strings.Join(m.rolesPath, "."))
	}
	return c, nil
}

// role is the strongest role the token's roles claim grants.
func (m *claimMapper) role(claims map[string]any) authorization.Role {
	var role authorization.Role
	for _, v := range claimValues(claims, m.rolesPath) {
		switch {
		case slices.Contains(m.write, v):
			return authorization.RoleWriter
		case slices.Contains(m.read, v):
			role = authorization.RoleReader
		}
	}
	return role
}

// claimValues reads the claim at path: a string is one value, an array its string items.
func claimValues(claims map[string]any, path []string) []string {
	var v any = claims
	for _, name := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[name]
	}
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		values := make([]string, 0, len(v))
		for _, item := range v {
			if s, ok := item.(string); ok {
				values = append(values, s)
			}
		}
		return values
	}
	return nil
}

// bearerToken is the token of an "Authorization: Bearer <token>" header.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// withDefaults returns a copy of o with defaults filled in.
func (o OIDC) withDefaults() *OIDC {
	if o.Scopes == nil {
		o.Scopes = []string{"openid", "profile", "email"}
	}
	if o.RolesClaim == "" {
		o.RolesClaim = "groups"
	}
	o.Scopes, o.ReadRoles, o.WriteRoles = slices.Clone(o.Scopes), slices.Clone(o.ReadRoles), slices.Clone(o.WriteRoles)
	return &o
}

func (o *OIDC) validate() error {
	switch {
	case o.Issuer == "":
		return errors.New("oidc issuer is required")
	case o.ClientID == "" || o.ClientSecret == "":
		return errors.New("oidc client id and client secret are required")
	case len(o.ReadRoles) == 0 && len(o.WriteRoles) == 0:
		return errors.New("oidc read roles or write roles are required: without either nobody may see anything")
	case !slices.Contains(o.Scopes, "openid"):
		return errors.New("oidc scopes must include openid")
	}
	return nil
}

// newServiceToken is the process's own credential: 256 random bits, known only to this
// process's clients.
func newServiceToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate the service's temporal token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
