// Package temporaldev runs a complete Temporal server (frontend, history,
// matching and worker services) plus the Temporal Web UI inside the current
// process, persisting to PostgreSQL.
//
// It exists so that `interop dev` and the integration tests need nothing but a
// PostgreSQL cluster: Start creates the server's databases and migrates their
// schemas with the server's own schema tooling, starts the server, registers
// the namespace and custom search attributes, and serves the UI. Everything is
// idempotent, so a second Start on the same databases keeps all workflow
// history.
//
// Typical use:
//
//	srv, err := temporaldev.Start(ctx, temporaldev.Options{
//		DatabaseURL: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
//		SearchAttributes: map[string]enumspb.IndexedValueType{
//			"InteropTenant": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
//		},
//	})
//	if err != nil { ... }
//	defer srv.Stop()
//	c, err := srv.NewClient(ctx, client.Options{})
//
// This is a development server: a single process, no TLS, archival and metrics
// disabled, and no authorization unless Options.OIDC asks for sign-in (then the
// UI signs users in with an OpenID provider and the frontend authorizes every
// call by the caller's ID token; see OIDC). Do not use it in production.
package temporaldev
