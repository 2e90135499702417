package temporaldev_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/temporaldev"
)

func searchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		"InteropTenant":      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"InteropConnector":   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"InteropMessageType": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"InteropStatus":      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}

func greet(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
	})
	var out string
	err := workflow.ExecuteLocalActivity(ctx, greeting, name).Get(ctx, &out)
	return out, err
}

func greeting(_ context.Context, name string) (string, error) {
	return "hello " + name, nil
}

func TestServerLifecycle(t *testing.T) {
	dbtest.SkipUnlessReachable(t)
	dbURL := dbtest.ClusterURL()

	prefix := "itest_" + randomSuffix(t)
	logs := newRecordingHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := temporaldev.Options{
		DatabaseURL:            dbURL,
		DatabaseName:           prefix + "_temporal",
		VisibilityDatabaseName: prefix + "_temporal_visibility",
		FrontendAddr:           "127.0.0.1:0",
		UIAddr:                 "127.0.0.1:0",
		SearchAttributes:       searchAttributes(),
		Logger:                 slog.New(logs),
	}
	t.Cleanup(func() {
		dbtest.DropDatabase(t, opts.DatabaseName)
		dbtest.DropDatabase(t, opts.VisibilityDatabaseName)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	began := time.Now()
	srv, err := temporaldev.Start(ctx, opts)
	require.NoError(t, err)
	t.Logf("first start (empty databases) took %s", time.Since(began))
	t.Cleanup(func() { _ = srv.Stop() })

	require.Equal(t, "default", srv.Namespace())
	require.NotEmpty(t, srv.UIURL())

	c, err := srv.NewClient(ctx, client.Options{})
	require.NoError(t, err)

	requireNamespaceAndSearchAttributes(ctx, t, c)

	run := runGreeting(ctx, t, c, "greet-"+prefix)
	c.Close()

	requireUIServesHTML(ctx, t, srv.UIURL())

	began = time.Now()
	require.NoError(t, srv.Stop())
	t.Logf("stop took %s", time.Since(began))
	require.NoError(t, srv.Stop(), "second Stop must be a no-op")

	// Restart on the same databases: everything must still be there. The
	// shard count cannot change after creation; the stored one must win.
	restart := opts
	restart.NumHistoryShards = 8
	began = time.Now()
	srv2, err := temporaldev.Start(ctx, restart)
	require.NoError(t, err)
	t.Logf("restart (existing databases) took %s", time.Since(began))
	t.Cleanup(func() { _ = srv2.Stop() })

	require.True(t, logs.saw("mismatches persisted cluster metadata"), "shard count mismatch must be logged")

	c2, err := srv2.NewClient(ctx, client.Options{})
	require.NoError(t, err)
	defer c2.Close()

	desc, err := c2.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.GetWorkflowExecutionInfo().GetStatus())

	requireNamespaceAndSearchAttributes(ctx, t, c2)

	// Visibility survived too, including the custom search attribute value.
	require.Eventually(t, func() bool {
		resp, err := c2.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: `InteropTenant = "acme"`,
		})
		return err == nil && len(resp.GetExecutions()) == 1 &&
			resp.GetExecutions()[0].GetExecution().GetRunId() == run.GetRunID()
	}, 30*time.Second, 200*time.Millisecond)

	// The restarted server must also accept new work, not just serve reads.
	runGreeting(ctx, t, c2, "greet-again-"+prefix)

	// A second server on a taken port fails fast and leaves the running one
	// (and its databases) alone.
	clash := opts
	clash.FrontendAddr = srv2.FrontendHostPort()
	_, err = temporaldev.Start(ctx, clash)
	require.ErrorContains(t, err, "is not free")
	_, err = c2.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	require.NoError(t, err)

	requireUIServesHTML(ctx, t, srv2.UIURL())
	began = time.Now()
	require.NoError(t, srv2.Stop())
	t.Logf("second stop took %s", time.Since(began))
}

func TestStartRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	_, err := temporaldev.Start(ctx, temporaldev.Options{})
	require.ErrorContains(t, err, "database url is required")

	_, err = temporaldev.Start(ctx, temporaldev.Options{DatabaseURL: "mysql://root@localhost/x"})
	require.ErrorContains(t, err, "unsupported scheme")

	_, err = temporaldev.Start(ctx, temporaldev.Options{
		DatabaseURL:            "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		DatabaseName:           "same",
		VisibilityDatabaseName: "same",
	})
	require.ErrorContains(t, err, "must differ")

	withOIDC := func(o temporaldev.OIDC) temporaldev.Options {
		return temporaldev.Options{DatabaseURL: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", OIDC: &o}
	}
	_, err = temporaldev.Start(ctx, withOIDC(temporaldev.OIDC{Issuer: "https://idp.example", ClientID: "ui", ReadRoles: []string{"r"}}))
	require.ErrorContains(t, err, "client secret")
	_, err = temporaldev.Start(ctx, withOIDC(temporaldev.OIDC{Issuer: "https://idp.example", ClientID: "ui", ClientSecret: "s"}))
	require.ErrorContains(t, err, "roles")
	_, err = temporaldev.Start(ctx, withOIDC(temporaldev.OIDC{Issuer: "https://idp.example", ClientID: "ui", ClientSecret: "s",
		ReadRoles: []string{"r"}, Scopes: []string{"profile"}}))
	require.ErrorContains(t, err, "openid")

	// An unreachable provider is an error at start, not a refusal of every later call.
	down := withOIDC(temporaldev.OIDC{Issuer: "http://127.0.0.1:1", ClientID: "ui", ClientSecret: "s", ReadRoles: []string{"r"}})
	down.FrontendAddr, down.DisableUI = "127.0.0.1:0", true
	_, err = temporaldev.Start(ctx, down)
	require.ErrorContains(t, err, "oidc discovery")
}

// runGreeting runs greet on a fresh worker and returns the completed run.
func runGreeting(ctx context.Context, t *testing.T, c client.Client, id string) client.WorkflowRun {
	t.Helper()
	began := time.Now()
	const taskQueue = "temporaldev-test"
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(greet)
	require.NoError(t, w.Start())
	defer w.Stop()

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword("InteropTenant").ValueSet("acme"),
		),
	}, greet, "interop")
	require.NoError(t, err)
	var out string
	require.NoError(t, run.Get(ctx, &out))
	require.Equal(t, "hello interop", out)
	t.Logf("workflow %s completed in %s", id, time.Since(began))
	return run
}

func requireNamespaceAndSearchAttributes(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	require.NoError(t, err)
	require.Equal(t, 72*time.Hour, ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration())

	sa, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	require.NoError(t, err)
	for name, typ := range searchAttributes() {
		require.Equal(t, typ, sa.GetCustomAttributes()[name], "search attribute %s", name)
	}
}

func requireUIServesHTML(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	require.Contains(t, strings.ToLower(string(body)), "<html")

	// The UI's API proxy must reach the frontend, or the page stays empty.
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/namespaces/default", nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var ns struct {
		NamespaceInfo struct {
			Name         string
			Capabilities struct {
				EagerWorkflowStart bool
				SyncUpdate         bool
			}
		}
	}
	require.NoError(t, json.Unmarshal(body, &ns))
	require.Equal(t, "default", ns.NamespaceInfo.Name)
	// Capabilities reflect our default dynamic config.
	require.True(t, ns.NamespaceInfo.Capabilities.EagerWorkflowStart, "eager workflow start enabled")
	require.True(t, ns.NamespaceInfo.Capabilities.SyncUpdate, "update workflow enabled")
}

// recordingHandler passes records on and remembers their messages, so the
// test can assert on what the server logged.
type recordingHandler struct {
	slog.Handler
	log *messageLog
}

type messageLog struct {
	mu   sync.Mutex
	msgs []string
}

func newRecordingHandler(inner slog.Handler) *recordingHandler {
	return &recordingHandler{Handler: inner, log: &messageLog{}}
}

func (h *recordingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.log.mu.Lock()
	h.log.msgs = append(h.log.msgs, r.Message)
	h.log.mu.Unlock()
	return h.Handler.Handle(ctx, r)
}

func (h *recordingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &recordingHandler{Handler: h.Handler.WithAttrs(attrs), log: h.log}
}

func (h *recordingHandler) WithGroup(name string) slog.Handler {
	return &recordingHandler{Handler: h.Handler.WithGroup(name), log: h.log}
}

func (h *recordingHandler) saw(substr string) bool {
	h.log.mu.Lock()
	defer h.log.mu.Unlock()
	for _, m := range h.log.msgs {
		if strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
