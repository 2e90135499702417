package owner

import (
	"context"
	"net/http"
	"sync"

	"github.com/nhp/interop/internal/fhirserver"
	"github.com/nhp/interop/internal/netguard"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
)

// SnapshotReader is an owner that reads a type as it was at an instant, deletions included:
// the built-in store, which keeps every version. A bulk export reads such an owner's
// snapshot; any other owner through its search, which cannot ask for an instant.
type SnapshotReader interface {
	ExportPage(ctx context.Context, q store.ExportQuery, fn func(id string, line []byte) error) (n int, last string, err error)
	ExportDeletedPage(ctx context.Context, q store.ExportQuery) ([]string, error)
}

// Resolver gives the Owner a routing table's owner label names for a tenant: routing.Builtin is
// the built-in store, anything else a FHIR server's base URL.
type Resolver struct {
	Store *store.Store
	// Handler serves the built-in store's FHIR REST under BuiltinBase; nil means a
	// fhirserver.Handler with default options (every interaction allowed: the caller checked).
	Handler http.Handler
	// HTTP reaches remote owners; nil means a client through Guard. A client given here is
	// used as it is: give one built by netguard (Policy.Client, Policy.Transport).
	HTTP *http.Client
	// Guard is the owner address policy of the default client: nil refuses loopback, private,
	// link-local and metadata addresses (netguard), at every dial.
	Guard *netguard.Policy
	// Token, when set, mints the bearer token sent to a remote owner on behalf of tenant with
	// scope, for requests that carry no Authorization of their own.
	Token func(ctx context.Context, tenant, scope string) (string, error)
	// MaxResponseBytes bounds a remote owner's answer to Do; 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64

	once    sync.Once
	handler http.Handler

	clientOnce sync.Once
	client     *http.Client
}

// Resolve returns tenant's owner labelled label.
func (r *Resolver) Resolve(tenant, label string) Owner {
	if label == routing.Builtin {
		return &Builtin{Store: r.Store, Tenant: tenant, Handler: r.builtinHandler()}
	}
	rem := &Remote{Base: label, HTTP: r.httpClient(), MaxResponseBytes: r.MaxResponseBytes}
	if r.Token != nil {
		rem.Token = func(ctx context.Context, scope string) (string, error) { return r.Token(ctx, tenant, scope) }
	}
	return rem
}

func (r *Resolver) httpClient() *http.Client {
	if r.HTTP != nil {
		return r.HTTP
	}
	r.clientOnce.Do(func() { r.client = r.Guard.Client(0) })
	return r.client
}

// BaseOf is the base URL of the owner labelled label (BuiltinBase for the built-in store).
func BaseOf(label string) string {
	if label == routing.Builtin {
		return BuiltinBase
	}
	return label
}

func (r *Resolver) builtinHandler() http.Handler {
	r.once.Do(func() {
		r.handler = r.Handler
		if r.handler == nil {
			r.handler = fhirserver.New(r.Store, fhirserver.Options{BaseURL: BuiltinBase})
		}
	})
	return r.handler
}

func withTenant(ctx context.Context, tenant string) context.Context {
	return fhirserver.WithTenant(ctx, tenant)
}
