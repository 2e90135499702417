package temporaldev_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/oidctest"
	"github.com/nhp/interop/internal/temporaldev"
)

// waitForSignal runs until it is signalled, terminated or cancelled: something for the UI to act on.
func waitForSignal(ctx workflow.Context) error {
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	return nil
}

// With OIDC on, the UI requires sign-in and the embedded server authorizes every call by the
// caller's token, while the service's own client and the server's system workers keep working.
func TestOIDCSignIn(t *testing.T) {
	dbtest.SkipUnlessReachable(t)
	idp := oidctest.New(t, "temporal-ui", "ui-secret")
	prefix := "itest_oidc_" + randomSuffix(t)
	opts := temporaldev.Options{
		DatabaseURL:            dbtest.ClusterURL(),
		DatabaseName:           prefix + "_temporal",
		VisibilityDatabaseName: prefix + "_temporal_visibility",
		FrontendAddr:           "127.0.0.1:0",
		UIAddr:                 "127.0.0.1:0",
		SearchAttributes:       searchAttributes(),
		Logger:                 slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
		OIDC: &temporaldev.OIDC{
			Issuer: idp.URL, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret,
			ReadRoles: []string{"interop-support"}, WriteRoles: []string{"interop-operators"},
		},
	}
	t.Cleanup(func() {
		dbtest.DropDatabase(t, opts.DatabaseName)
		dbtest.DropDatabase(t, opts.VisibilityDatabaseName)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := temporaldev.Start(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })

	// The service's own client: it registered the namespace already (an admin call) and runs
	// workflows on its worker.
	svc, err := srv.NewClient(ctx, client.Options{})
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	const taskQueue = "temporaldev-oidc-test"
	w := worker.New(svc, taskQueue, worker.Options{})
	w.RegisterWorkflow(greet)
	w.RegisterWorkflow(waitForSignal)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	startWaiting := func(t *testing.T, id string) {
		t.Helper()
		_, err := svc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, waitForSignal)
		require.NoError(t, err)
	}
	status := func(t *testing.T, id string) enumspb.WorkflowExecutionStatus {
		t.Helper()
		desc, err := svc.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		return desc.GetWorkflowExecutionInfo().GetStatus()
	}

	t.Run("the service's own client runs workflows", func(t *testing.T) {
		runGreeting(ctx, t, svc, "greet-"+prefix)
	})

	t.Run("the server's system worker runs schedules", func(t *testing.T) {
		// Schedules run as workflows of the server's own worker service, which reaches the
		// frontend without a user's token.
		id := "schedule-" + prefix
		h, err := svc.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID:   id,
			Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
			Action: &client.ScheduleWorkflowAction{
				ID: "scheduled-greet-" + prefix, Workflow: greet, Args: []any{"interop"}, TaskQueue: taskQueue,
			},
			TriggerImmediately: true,
		})
		require.NoError(t, err)
		var started *client.ScheduleWorkflowExecution
		require.Eventually(t, func() bool {
			desc, err := h.Describe(ctx)
			if err != nil || len(desc.Info.RecentActions) == 0 {
				return false
			}
			started = desc.Info.RecentActions[0].StartWorkflowResult
			return started != nil
		}, time.Minute, 200*time.Millisecond, "the schedule starts its action")
		var out string
		require.NoError(t, svc.GetWorkflow(ctx, started.WorkflowID, started.FirstExecutionRunID).Get(ctx, &out))
		require.Equal(t, "hello interop", out)
		require.NoError(t, h.Delete(ctx))
	})

	writer := func() string {
		return idp.IDToken(map[string]any{"sub": "olga", "groups": []string{"staff", "interop-operators"}})
	}
	reader := func() string {
		return idp.IDToken(map[string]any{"sub": "rita", "groups": []string{"interop-support"}})
	}

	t.Run("the frontend refuses callers without a valid token", func(t *testing.T) {
		stranger := oidctest.New(t, idp.ClientID, idp.ClientSecret)
		for name, token := range map[string]string{
			"none":           "",
			"not a token":    "letmein",
			"forged":         idp.Forge(map[string]any{"sub": "mallory", "groups": []string{"interop-operators"}}),
			"another issuer": stranger.IDToken(map[string]any{"sub": "mallory", "groups": []string{"interop-operators"}}),
			"expired":        idp.IDToken(map[string]any{"sub": "olga", "groups": []string{"interop-operators"}, "iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()}),
			"another client": idp.IDToken(map[string]any{"sub": "olga", "groups": []string{"interop-operators"}, "aud": "another-client"}),
			"no role":        idp.IDToken(map[string]any{"sub": "nina", "groups": []string{"staff"}}),
		} {
			o := client.Options{HostPort: srv.FrontendHostPort(), Namespace: srv.Namespace()}
			if token != "" {
				o.Credentials = client.NewAPIKeyStaticCredentials(token)
				o.ConnectionOptions.TLSDisabled = true
			}
			// Without a token the health check passes and the listing is refused; an invalid
			// token is refused at once.
			c, err := client.DialContext(ctx, o)
			if err == nil {
				_, err = c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{})
				c.Close()
			}
			var denied *serviceerror.PermissionDenied
			require.ErrorAs(t, err, &denied, name)
		}
	})

	t.Run("the frontend grants a reader reading and a writer acting", func(t *testing.T) {
		id := "direct-" + prefix
		startWaiting(t, id)
		dial := func(token string) client.Client {
			c, err := client.DialContext(ctx, client.Options{HostPort: srv.FrontendHostPort(), Namespace: srv.Namespace(),
				Credentials: client.NewAPIKeyStaticCredentials(token), ConnectionOptions: client.ConnectionOptions{TLSDisabled: true}})
			require.NoError(t, err)
			t.Cleanup(c.Close)
			return c
		}
		r := dial(reader())
		_, err := r.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		var denied *serviceerror.PermissionDenied
		require.ErrorAs(t, r.TerminateWorkflow(ctx, id, "", "reader"), &denied)
		require.ErrorAs(t, r.SignalWorkflow(ctx, id, "", "go", nil), &denied)
		_, err = r.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: taskQueue}, waitForSignal)
		require.ErrorAs(t, err, &denied)
		require.NoError(t, dial(writer()).SignalWorkflow(ctx, id, "", "go", nil))
		require.Eventually(t, func() bool { return status(t, id) == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED }, 30*time.Second, 100*time.Millisecond)
	})

	ui := newUIClient(t, srv.UIURL())
	t.Run("the UI's API refuses a caller who has not signed in", func(t *testing.T) {
		code, body := ui.do(ctx, t, http.MethodGet, "/api/v1/settings", nil)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `"Auth":{"Enabled":true`, "the UI's pages offer sign-in")
		code, _ = ui.do(ctx, t, http.MethodGet, "/api/v1/namespaces/default/workflows", nil)
		require.Equal(t, http.StatusUnauthorized, code)
		for name, token := range map[string]string{
			"forged":         idp.Forge(map[string]any{"sub": "mallory", "groups": []string{"interop-operators"}}),
			"another issuer": oidctest.New(t, idp.ClientID, idp.ClientSecret).IDToken(map[string]any{"groups": []string{"interop-operators"}}),
			"expired":        idp.IDToken(map[string]any{"groups": []string{"interop-operators"}, "iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()}),
		} {
			code, _ := ui.do(ctx, t, http.MethodGet, "/api/v1/namespaces/default/workflows", signedIn(token))
			require.Equal(t, http.StatusUnauthorized, code, name)
		}
	})

	t.Run("through the UI a reader lists and may not act", func(t *testing.T) {
		id := "ui-reader-" + prefix
		startWaiting(t, id)
		require.Eventually(t, func() bool {
			code, body := ui.do(ctx, t, http.MethodGet, "/api/v1/namespaces/default/workflows?query="+url.QueryEscape(`WorkflowId="`+id+`"`), signedIn(reader()))
			return code == http.StatusOK && strings.Contains(body, id)
		}, 30*time.Second, 200*time.Millisecond)
		for _, action := range []string{"/terminate", "/signal/go"} {
			code, body := ui.do(ctx, t, http.MethodPost, "/api/v1/namespaces/default/workflows/"+id+action, signedIn(reader()))
			require.Equal(t, http.StatusForbidden, code, action)
			require.Contains(t, body, "Request unauthorized", "the frontend refused, not the CSRF check")
		}
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, status(t, id))

		// The history download, which ui-server serves apart from its API proxy, forwards the
		// caller's token too.
		desc, err := svc.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		raw := "/api/v1/namespaces/default/workflows/" + id + "/run/" + desc.GetWorkflowExecutionInfo().GetExecution().GetRunId() + "/history.json"
		code, _ := ui.do(ctx, t, http.MethodGet, raw, nil)
		require.Equal(t, http.StatusUnauthorized, code)
		code, body := ui.do(ctx, t, http.MethodGet, raw, signedIn(reader()))
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, "WorkflowExecutionStartedEventAttributes", "the history, not an error")
	})

	t.Run("through the UI a writer terminates", func(t *testing.T) {
		id := "ui-writer-" + prefix
		startWaiting(t, id)
		code, body := ui.do(ctx, t, http.MethodPost, "/api/v1/namespaces/default/workflows/"+id+"/terminate", signedIn(writer()))
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, status(t, id))
	})

	t.Run("sign-in sends the browser to the provider and back", func(t *testing.T) {
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.UIURL()+"/auth/sso", nil)
		require.NoError(t, err)
		resp, err := noFollow.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode)
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		require.Equal(t, idp.AuthorizationEndpoint(), loc.Scheme+"://"+loc.Host+loc.Path)
		require.Equal(t, idp.ClientID, loc.Query().Get("client_id"))
		require.Equal(t, srv.UIURL()+"/auth/sso/callback", loc.Query().Get("redirect_uri"))
		require.Equal(t, "openid profile email", loc.Query().Get("scope"))

		// The whole round trip: the provider signs the user in, the UI exchanges the code and
		// hands the browser the ID token, which the API then accepts.
		idp.SignIn(map[string]any{"sub": "olga", "email": "olga@example.org", "groups": []string{"interop-operators"}})
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		browser := &http.Client{Jar: jar}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, srv.UIURL()+"/auth/sso", nil)
		require.NoError(t, err)
		resp, err = browser.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, srv.UIURL()+"/", resp.Request.URL.String(), "back at the UI")
		u, err := url.Parse(srv.UIURL())
		require.NoError(t, err)
		var user struct{ AccessToken, IDToken, Email string }
		for _, c := range jar.Cookies(u) {
			if c.Name == "user0" {
				b, err := base64.StdEncoding.DecodeString(c.Value)
				require.NoError(t, err)
				require.NoError(t, json.Unmarshal(b, &user))
			}
		}
		require.Equal(t, "olga@example.org", user.Email)
		require.NotEmpty(t, user.IDToken)
		code, body := ui.do(ctx, t, http.MethodGet, "/api/v1/namespaces/default/workflows", map[string]string{
			"Authorization": "Bearer " + user.AccessToken, "Authorization-Extras": user.IDToken,
		})
		require.Equal(t, http.StatusOK, code, body)
	})
}

// signedIn are the headers the UI sends for a signed-in user: the provider's (here opaque)
// access token as bearer and the ID token beside it.
func signedIn(idToken string) map[string]string {
	return map[string]string{"Authorization": "Bearer opaque-access-token", "Authorization-Extras": idToken}
}

// uiClient calls the UI's API as its pages do, CSRF handshake included.
type uiClient struct {
	base string
	csrf string
}

func newUIClient(t *testing.T, base string) *uiClient {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/settings") //nolint:noctx // a test's one-off request
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, c := range resp.Cookies() {
		if c.Name == "_csrf" {
			return &uiClient{base: base, csrf: c.Value}
		}
	}
	t.Fatal("the UI issues no CSRF cookie")
	return nil
}

func (u *uiClient) do(ctx context.Context, t *testing.T, method, path string, headers map[string]string) (int, string) {
	t.Helper()
	var body io.Reader
	if method != http.MethodGet {
		body = strings.NewReader(`{}`)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.base+path, body)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: "_csrf", Value: u.csrf}) //nolint:gosec // G124: a cookie a test client sends back, not one it sets
	req.Header.Set("X-CSRF-Token", u.csrf)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
