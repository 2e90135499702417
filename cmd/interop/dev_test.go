package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/config"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
)

var recordHistory = flag.String("record-history", "", "write the InboundHL7 history of TestDevEndToEnd to workflows/testdata/histories/<name>.json")

// TestDevEndToEnd runs `interop dev` in-process against a real PostgreSQL and the embedded
// Temporal server, sends an ADT^A01 over a real MLLP socket and follows it to the FHIR API.
// It then stops the service and starts it again on the same databases: nothing is lost.
func TestDevEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the embedded Temporal server")
	}
	ctx := context.Background()
	cfg, _ := devTestConfig(t, "e2e")
	base := "http://" + cfg.HTTPAddr

	stop := startDev(t, cfg)
	waitReady(t, base)

	raw := loadFixture(t, "adt_a01.hl7")
	ack := sendMLLP(t, cfg.MLLPAddr, raw)
	require.Equal(t, hl7v2.AppAccept, ack.Code, "ACK text: %s", ack.Text)
	require.Equal(t, "MSG00001", ack.ControlID)

	secret, err := auth.DevSecret(cfg.DataDir)
	require.NoError(t, err)
	token, err := auth.HS256{Secret: secret}.Issue("e2e", "default", "system/*.cruds interop/admin", time.Hour)
	require.NoError(t, err)

	search := base + "/fhir/Patient?identifier=" + url.QueryEscape("urn:id:test1|PATID1234")
	patient := waitForTotal(t, search, token, 1)
	require.Regexp(t, `"family":\s*"EVERYMAN"`, patient)

	// A resend is a duplicate: the stored ACK is replayed and nothing is processed again.
	again := sendMLLP(t, cfg.MLLPAddr, raw)
	require.Equal(t, hl7v2.AppAccept, again.Code)
	require.Equal(t, ack.Header.ControlID, again.Header.ControlID, "the very same ACK is replayed")

	// Bytes without an MSH are refused with an AR that says why.
	nak := sendMLLP(t, cfg.MLLPAddr, []byte("this is not HL7\r"))
	require.Equal(t, hl7v2.AppReject, nak.Code)
	require.NotEmpty(t, nak.Errors)

	// The message ends processed (a step after the Patient write), with its events in order.
	var events string
	require.Eventually(t, func() bool {
		events = getJSON(t, base+"/admin/events", token)
		return strings.Contains(events, `"Hl7MessageProcessed"`)
	}, 30*time.Second, 100*time.Millisecond, "Hl7MessageProcessed is published")
	require.Less(t, strings.Index(events, `"Hl7MessageReceived"`), strings.Index(events, `"Hl7MessageProcessed"`))
	require.Equal(t, 1, strings.Count(events, `"Hl7MessageReceived"`), "the duplicate raised no second event")

	// The FHIR and admin requests above are in the tenant's audit trail (written within a
	// flush interval), the Patient searches among them with their query.
	query := base64.StdEncoding.EncodeToString([]byte("Patient?identifier=" + url.QueryEscape("urn:id:test1|PATID1234")))
	require.Eventually(t, func() bool {
		trail := getJSON(t, base+"/admin/audit-events?agent=e2e&action=E&_count=1000", token)
		return strings.Contains(trail, `"resourceType":"AuditEvent"`) && strings.Contains(trail, query) && strings.Contains(trail, `"site":"default"`)
	}, 10*time.Second, 100*time.Millisecond, "the Patient searches are in the audit trail")

	// The run is in Temporal, searchable by its business id and search attributes.
	tc, err := client.Dial(client.Options{HostPort: cfg.Temporal.EmbeddedFrontendAddr, Namespace: cfg.Temporal.Namespace})
	require.NoError(t, err)
	defer tc.Close()
	var wfID string
	require.Eventually(t, func() bool {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: cfg.Temporal.Namespace, Query: `InteropTenant = "default" AND InteropStatus = "processed"`,
		})
		if err != nil || len(resp.Executions) != 1 {
			return false
		}
		wfID = resp.Executions[0].Execution.WorkflowId
		return true
	}, 30*time.Second, 200*time.Millisecond, "the processed run is visible by search attribute")
	require.True(t, strings.HasPrefix(wfID, "HL7Message:default:"), wfID)
	require.True(t, strings.HasSuffix(wfID, ":ADTApp:MSG00001"), wfID)
	if *recordHistory != "" {
		writeHistory(t, tc, wfID, *recordHistory)
	}

	// A type without a mapping (a DFT whose PID names another patient) is acknowledged,
	// processed and ends unmapped: no Patient is written for it.
	dft := []byte("MSH|^~\\&|FINApp|FAC|EHR|FAC|20240101120000||DFT^P03^DFT_P03|DFT00001|P|2.5.1\r" +
		"EVN|P03|20240101120000\rPID|1||PATID-DFT^^^test1^MR||PAYER^PAULA||19700101|F\r" +
		"FT1|1|||20240101|20240101|CG|71045^Xray chest^C4\r")
	require.Equal(t, hl7v2.AppAccept, sendMLLP(t, cfg.MLLPAddr, dft).Code)
	var unmappedID string
	require.Eventually(t, func() bool {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: cfg.Temporal.Namespace, Query: `InteropStatus = "unmapped"`,
		})
		if err != nil || len(resp.Executions) != 1 {
			return false
		}
		unmappedID = resp.Executions[0].Execution.WorkflowId
		return resp.Executions[0].Status == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED
	}, 30*time.Second, 200*time.Millisecond, "the DFT's run completes unmapped")
	require.True(t, strings.HasSuffix(unmappedID, ":FINApp:DFT00001"), unmappedID)
	require.Contains(t, getJSON(t, base+"/admin/messages?status=unmapped", token), `"DFT00001"`)
	waitForTotal(t, base+"/fhir/Patient?identifier="+url.QueryEscape("urn:id:test1|PATID-DFT"), token, 0)
	if *recordHistory != "" {
		writeHistory(t, tc, unmappedID, strings.TrimSuffix(*recordHistory, "_processed")+"_unmapped")
	}

	ui, err := http.Get("http://" + cfg.Temporal.EmbeddedUIAddr + "/")
	require.NoError(t, err)
	ui.Body.Close()
	require.Equal(t, http.StatusOK, ui.StatusCode, "the Temporal UI answers")
	tc.Close()

	t.Run("SMART backend services token", func(t *testing.T) {
		smartTokenRoundTrip(t, base, token)
	})
	t.Run("owner down, dead letter, reprocess", func(t *testing.T) {
		ownerDownThenReprocess(t, cfg, base, token)
	})

	// Stop, start again: the patient and the workflow history are still there.
	stop()
	stop = startDev(t, cfg)
	defer stop()
	waitReady(t, base)
	waitForTotal(t, search, token, 1)
	tc2, err := client.Dial(client.Options{HostPort: cfg.Temporal.EmbeddedFrontendAddr, Namespace: cfg.Temporal.Namespace})
	require.NoError(t, err)
	defer tc2.Close()
	desc, err := tc2.DescribeWorkflowExecution(ctx, wfID, "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.WorkflowExecutionInfo.Status)
}

// devProcess is one in-process `interop dev`.
type devProcess struct {
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

// devTestConfig is the configuration of an in-process `interop dev` on fresh databases named
// after prefix (the service's, and the embedded Temporal server's two), dropped at the end,
// with every address free; it returns the service database's URL too.
func devTestConfig(t *testing.T, prefix string) (config.Config, string) {
	t.Helper()
	name := dbtest.UniqueName(prefix)
	serviceURL, err := dbtest.WithDatabase(dbtest.ClusterURL(), name)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, d := range []string{name, name + "_temporal", name + "_visibility"} {
			dbtest.DropDatabase(t, d)
		}
	})
	cfg := config.Default()
	cfg.DatabaseURL = serviceURL
	cfg.HTTPAddr = freeAddr(t)
	cfg.MLLPAddr = freeAddr(t)
	cfg.DataDir = t.TempDir()
	cfg.LogFormat = "text"
	cfg.LogLevel = "warn"
	cfg.Temporal.EmbeddedFrontendAddr = freeAddr(t)
	cfg.Temporal.EmbeddedUIAddr = freeAddr(t)
	cfg.Temporal.EmbeddedDatabase = name + "_temporal"
	cfg.Temporal.EmbeddedVisibilityDatabase = name + "_visibility"
	cfg.Temporal.HistoryShards = 1
	cfg.DBMaxConns = testDevDBMaxConns()
	return cfg, serviceURL
}

// testDevDBMaxConns is the connection budget of the tests' in-process `interop dev`:
// INTEROP_TEST_DEV_DB_MAX_CONNS (make test sets it), else 24, so that tests fit beside a
// running `make run` (scripts/test-parallelism.sh counts on it).
func testDevDBMaxConns() int {
	if n, err := strconv.Atoi(os.Getenv("INTEROP_TEST_DEV_DB_MAX_CONNS")); err == nil && n > 0 {
		return n
	}
	return 24
}

func startDev(t *testing.T, cfg config.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &devProcess{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(p.done)
		p.err = devCmd{}.Run(ctx, &cfg)
	}()
	running[cfg.HTTPAddr] = p
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-p.done:
			require.NoError(t, p.err, "interop dev stops cleanly")
		case <-time.After(60 * time.Second):
			t.Error("interop dev did not stop within 60 s")
		}
	}
	// Registered after the databases' drop, so it runs before it: never drop under a live server.
	t.Cleanup(stop)
	return stop
}

// running maps an HTTP address to its dev process, so waitReady can fail fast when it exited.
var running = map[string]*devProcess{}

func waitReady(t *testing.T, base string) {
	t.Helper()
	p := running[strings.TrimPrefix(base, "http://")]
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("interop dev exited before it was ready: %v", p.err)
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("interop dev did not become ready within 90 s")
}

func waitForTotal(t *testing.T, u, token string, total int) string {
	t.Helper()
	var body string
	require.Eventually(t, func() bool {
		body = getJSON(t, u, token)
		var b struct {
			Total int `json:"total"`
		}
		return json.Unmarshal([]byte(body), &b) == nil && b.Total == total
	}, 60*time.Second, 100*time.Millisecond, "search %s reaches total %d", u, total)
	return body
}

func getJSON(t *testing.T, u, token string) string {
	t.Helper()
	return getBody(t, u, token)
}

func sendMLLP(t *testing.T, addr string, msg []byte) hl7v2.AckInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mllp.Dial(ctx, addr)
	require.NoError(t, err)
	defer c.Close()
	reply, err := c.Send(ctx, msg)
	require.NoError(t, err)
	ack, err := hl7v2.ParseAck(reply)
	require.NoError(t, err)
	return ack
}

func loadFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	msgs := splitMessages(b)
	require.Len(t, msgs, 1)
	return msgs[0]
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func writeHistory(t *testing.T, tc client.Client, wfID, name string) {
	t.Helper()
	ctx := context.Background()
	iter := tc.GetWorkflowHistory(ctx, wfID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	hist := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	path := filepath.Join("..", "..", "workflows", "testdata", "histories", name+".json")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, b, 0o644))
	fmt.Println("recorded", path)
}

// ownerDownThenReprocess routes Patient to an owner that answers 503: the message is retried
// as new attempts, then dead-lettered when the connector's tries are spent; once the owner is
// back, a reprocess from the admin API processes it.
func ownerDownThenReprocess(t *testing.T, cfg config.Config, base, token string) {
	ctx := context.Background()
	var ownerUp atomic.Bool
	var requests atomic.Int32
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if !ownerUp.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.Method == http.MethodGet { // the search before a guarded conditional update
			w.Header().Set("Content-Type", "application/fhir+json")
			_, _ = w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","total":0}`))
			return
		}
		w.Header().Set("Location", "http://owner.test/fhir/Patient/ext-1/_history/1")
		w.WriteHeader(http.StatusCreated)
	}))
	defer owner.Close()

	pool, err := db.Open(ctx, cfg.DatabaseURL)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `INSERT INTO fhir_routing_rules (tenant_id, resource_type, owner_url) VALUES ('default', 'Patient', $1)`, owner.URL+"/fhir")
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE interop_connectors SET settings = settings || '{"retry":{"maxAttempts":2,"initialIntervalSeconds":1,"maxIntervalSeconds":1}}' WHERE tenant_id = 'default'`)
	require.NoError(t, err)
	defer func() {
		_, _ = pool.Exec(ctx, `DELETE FROM fhir_routing_rules WHERE tenant_id = 'default' AND resource_type = 'Patient'`)
	}()

	msg := strings.ReplaceAll(string(loadFixture(t, "adt_a01.hl7")), "MSG00001", "MSG-OWNER-DOWN")
	msg = strings.ReplaceAll(msg, "PATID1234", "PATID-DOWN")
	// The listener reopens when the connector's settings change: resend until it answers.
	var ack hl7v2.AckInfo
	require.Eventually(t, func() bool {
		a, err := trySendMLLP(cfg.MLLPAddr, []byte(msg))
		ack = a
		return err == nil
	}, 30*time.Second, 200*time.Millisecond)
	require.Equal(t, hl7v2.AppAccept, ack.Code)

	var list struct {
		Messages []struct {
			ID        string `json:"id"`
			Status    string `json:"status"`
			LastError string `json:"lastError"`
		} `json:"messages"`
	}
	require.Eventually(t, func() bool {
		require.NoError(t, json.Unmarshal([]byte(getJSON(t, base+"/admin/messages?controlId=MSG-OWNER-DOWN", token)), &list))
		return len(list.Messages) == 1 && list.Messages[0].Status == "dead_lettered"
	}, 90*time.Second, 250*time.Millisecond, "the message is dead-lettered once its tries are spent")
	require.Contains(t, list.Messages[0].LastError, "503")
	// One sentence: the step and the root cause, without Temporal's "(type: …, retryable: …)"
	// and without the cause repeated after it.
	require.True(t, strings.HasPrefix(list.Messages[0].LastError, "route: "), list.Messages[0].LastError)
	require.NotContains(t, list.Messages[0].LastError, "retryable")
	require.Equal(t, 1, strings.Count(list.Messages[0].LastError, "503"), list.Messages[0].LastError)
	require.GreaterOrEqual(t, requests.Load(), int32(2), "the owner was asked on every try")
	id := list.Messages[0].ID

	var detail struct {
		Attempts []struct {
			Status        string `json:"status"`
			FieldCoverage struct {
				Populated int `json:"populated"`
				Mapped    int `json:"mapped"`
				Fields    []struct {
					Location string `json:"location"`
					Status   string `json:"status"`
				} `json:"fields"`
			} `json:"fieldCoverage"`
		} `json:"attempts"`
	}
	require.NoError(t, json.Unmarshal([]byte(getJSON(t, base+"/admin/messages/"+id, token)), &detail))
	require.Len(t, detail.Attempts, 2, "each try is an Hl7ProcessingAttempt")
	cov := detail.Attempts[0].FieldCoverage
	require.Positive(t, cov.Populated, "the attempt shows the Map step's field accounting")
	require.Len(t, cov.Fields, cov.Populated)
	statuses := map[string]string{}
	for _, f := range cov.Fields {
		statuses[f.Location] = f.Status
	}
	require.Equal(t, "mapped", statuses["PID-3(1).1"], "the patient identifier is mapped")
	require.Equal(t, "not mapped", statuses["ROL-2"], "a segment the mapping does not read is accounted as not mapped")

	raw := getBody(t, base+"/admin/messages/"+id+"/raw", token)
	require.Equal(t, msg, raw, "the raw message is returned byte for byte")

	ownerUp.Store(true)
	req, err := http.NewRequest(http.MethodPost, base+"/admin/messages/"+id+"/reprocess", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	require.Contains(t, string(body), `"reprocessOf"`)

	require.Eventually(t, func() bool {
		require.NoError(t, json.Unmarshal([]byte(getJSON(t, base+"/admin/messages?controlId=MSG-OWNER-DOWN", token)), &list))
		return len(list.Messages) == 1 && list.Messages[0].Status == "processed"
	}, 60*time.Second, 250*time.Millisecond, "the reprocessed message is processed")
	require.NoError(t, json.Unmarshal([]byte(getJSON(t, base+"/admin/messages/"+id, token)), &detail))
	require.Len(t, detail.Attempts, 3)
	require.Contains(t, getJSON(t, base+"/admin/messages/"+id, token), `"resourceId":"ext-1"`)
}

func trySendMLLP(addr string, msg []byte) (hl7v2.AckInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := mllp.Dial(ctx, addr)
	if err != nil {
		return hl7v2.AckInfo{}, err
	}
	defer c.Close()
	reply, err := c.Send(ctx, msg)
	if err != nil {
		return hl7v2.AckInfo{}, err
	}
	return hl7v2.ParseAck(reply)
}

func getBody(t *testing.T, u, token string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return string(b)
}
