// Package devproc runs `interop dev` as a child process of a whole-system benchmark: built from
// this module as a user builds it, on loopback ports of its own, with its log in a file, and
// stopped the way an operator stops it (SIGTERM) or the way a crash does (SIGKILL).
package devproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Build compiles ./cmd/interop into dir and returns the binary's path. It runs in the working
// directory, which must be the module root (where `go run ./bench/...` runs).
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "interop")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/interop").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/interop: %w\n%s", err, out)
	}
	return bin, nil
}

// FreeAddrs returns n loopback addresses whose ports were free a moment ago.
func FreeAddrs(n int) ([]string, error) {
	addrs := make([]string, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range lns {
			_ = l.Close() // only reserved the port until now
		}
	}()
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		addrs[i] = l.Addr().String()
	}
	return addrs, nil
}

// Env is this process's environment without anything that configures interop (DATABASE_URL,
// INTEROP_*, TEMPORAL_*), plus vars.
func Env(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || strings.HasPrefix(k, "INTEROP_") || strings.HasPrefix(k, "TEMPORAL_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// Proc is one `interop dev` process.
type Proc struct {
	Cmd     *exec.Cmd
	Started time.Time
	LogPath string
	done    chan struct{}
	err     error
}

// Start runs `bin dev` with env, appending its output to logPath after a line naming label.
// The child is killed if this process dies (Pdeathsig), so that no orphan keeps the ports and
// the databases.
func Start(bin string, env []string, logPath, label string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(logf, "===== %s: %s dev (%s) =====\n", label, bin, time.Now().Format(time.RFC3339)); err != nil {
		_ = logf.Close() // the write's error is the one that counts
		return nil, err
	}
	cmd := exec.Command(bin, "dev")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close() // the start's error is the one that counts
		return nil, err
	}
	p := &Proc{Cmd: cmd, Started: time.Now(), LogPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close() // the child has exited: nothing more is written
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process exited; valid once Done is closed.
func (p *Proc) Err() error { return p.err }

// WaitReady polls base/readyz until it answers 200, the process exits, ctx ends or timeout
// passes.
func (p *Proc) WaitReady(ctx context.Context, base string, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("interop dev exited before it was ready: %v\n%s", p.err, Tail(p.LogPath, 40))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("interop dev not ready within %s\n%s", timeout, Tail(p.LogPath, 40))
}

// Kill sends SIGKILL (no shutdown hook runs) and waits for the process to be gone.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Kill() // fails only when it has exited already
	<-p.done
}

// Stop sends SIGTERM and waits up to grace for a clean exit, then kills. It returns the exit
// error of a process that did not stop cleanly.
func (p *Proc) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		<-p.done
		return p.err
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		p.Kill()
		return errors.New("interop dev did not stop within " + grace.String() + " of SIGTERM; killed")
	}
}

// Tail returns the last lines of the file at path.
func Tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return string(bytes.Join(all, []byte("\n")))
}
