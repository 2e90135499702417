package temporaldev

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"
)

// readyPollInterval paces the readiness and registration retries; the
// server usually needs a few hundred milliseconds after Start to answer.
const readyPollInterval = 200 * time.Millisecond

// waitForFrontend blocks until the frontend's health check passes. The
// server's Start returns once its services are started, but the frontend
// reports itself unhealthy until it has joined the membership ring.
func waitForFrontend(ctx context.Context, c client.Client) error {
	return retry(ctx, func(ctx context.Context) error {
		_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}, func(error) bool { return true })
}

// ensureNamespace registers the namespace unless it exists. Retention only
// applies on creation: an existing namespace is left as the user set it.
func ensureNamespace(ctx context.Context, c client.Client, name string, retention time.Duration) error {
	return retry(ctx, func(ctx context.Context) error {
		_, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        name,
			WorkflowExecutionRetentionPeriod: durationpb.New(retention),
		})
		var exists *serviceerror.NamespaceAlreadyExists
		if errors.As(err, &exists) {
			return nil
		}
		return err
	}, isTransient)
}

// ensureSearchAttributes adds the wanted custom search attributes that the
// namespace lacks. Adding an existing attribute is an error in Temporal, so
// the current set is listed first; a type mismatch cannot be fixed in place
// and is reported instead of silently ignored.
func ensureSearchAttributes(ctx context.Context, c client.Client, namespace string, want map[string]enumspb.IndexedValueType) error {
	if len(want) == 0 {
		return nil
	}
	return retry(ctx, func(ctx context.Context) error {
		resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{
			Namespace: namespace,
		})
		if err != nil {
			return fmt.Errorf("list search attributes: %w", err)
		}
		missing, err := missingSearchAttributes(want, resp.GetCustomAttributes(), resp.GetSystemAttributes())
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			return nil
		}
		_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace:        namespace,
			SearchAttributes: missing,
		})
		var exists *serviceerror.AlreadyExists
		if errors.As(err, &exists) {
			// Added concurrently (or the server's cache lagged); list again to
			// verify the types.
			return errRetry
		}
		if err != nil {
			return fmt.Errorf("add search attributes: %w", err)
		}
		return nil
	}, isTransient)
}

func missingSearchAttributes(want, custom, system map[string]enumspb.IndexedValueType) (map[string]enumspb.IndexedValueType, error) {
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)

	missing := map[string]enumspb.IndexedValueType{}
	for _, name := range names {
		typ := want[name]
		if _, ok := system[name]; ok {
			return nil, permanent(fmt.Errorf("search attribute %q is a system attribute", name))
		}
		have, ok := custom[name]
		if !ok {
			missing[name] = typ
			continue
		}
		if have != typ {
			return nil, permanent(fmt.Errorf("search attribute %q exists with type %s, want %s", name, have, typ))
		}
	}
	return missing, nil
}

// errRetry asks retry for another attempt without a real failure.
var errRetry = errors.New("retry")

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

func permanent(err error) error { return permanentError{err: err} }

// isTransient covers the window right after start in which the frontend is
// up but the namespace registry or membership has not caught up yet.
func isTransient(err error) bool {
	var (
		perm        permanentError
		unavailable *serviceerror.Unavailable
		notFound    *serviceerror.NamespaceNotFound
		internal    *serviceerror.Internal
		deadline    *serviceerror.DeadlineExceeded
	)
	switch {
	case errors.As(err, &perm):
		return false
	case errors.Is(err, errRetry),
		errors.As(err, &unavailable),
		errors.As(err, &notFound),
		errors.As(err, &internal),
		errors.As(err, &deadline):
		return true
	}
	return false
}

// retry runs fn until it succeeds, fails with a non-retryable error or ctx
// ends; on timeout the last real error is returned since it explains more
// than "context deadline exceeded".
func retry(ctx context.Context, fn func(context.Context) error, retryable func(error) bool) error {
	var last error
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(attemptCtx)
		cancel()
		if err == nil {
			return nil
		}
		if !retryable(err) {
			return err
		}
		if !errors.Is(err, errRetry) {
			last = err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w (gave up: %w)", last, ctx.Err())
		case <-time.After(readyPollInterval):
		}
	}
}

// EnsureSearchAttributes adds the custom search attributes of want that namespace lacks. The
// worker calls it against external clusters too, so a fresh cluster needs no manual step.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string, want map[string]enumspb.IndexedValueType) error {
	return ensureSearchAttributes(ctx, c, namespace, want)
}
