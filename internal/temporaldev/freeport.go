package temporaldev

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// Ports are picked from this range instead of the kernel's ephemeral range
// (32768 and up on Linux) because the PostgreSQL schema stores membership
// ports in a SMALLINT column: a port above 32767 makes every membership
// heartbeat fail and the cluster never forms.
const (
	minPickedPort   = 20000
	maxPickedPort   = 32767
	maxPickAttempts = 200
)

// portPicker hands out distinct free TCP ports on one IP. It keeps every
// probe listener open until close so that no port is handed out twice.
type portPicker struct {
	ip        string
	listeners []net.Listener
}

func newPortPicker(ip string) *portPicker {
	return &portPicker{ip: ip}
}

func (p *portPicker) next() (int, error) {
	var lastErr error
	for range maxPickAttempts {
		port := minPickedPort + rand.IntN(maxPickedPort-minPickedPort+1) //nolint:gosec // G404: spreads picks over the range, guards nothing
		ln, err := net.Listen("tcp", net.JoinHostPort(p.ip, strconv.Itoa(port)))
		if err != nil {
			lastErr = err
			continue
		}
		p.listeners = append(p.listeners, ln)
		return port, nil
	}
	return 0, fmt.Errorf("find free port on %s in %d-%d: %w", p.ip, minPickedPort, maxPickedPort, lastErr)
}

// close releases the probe listeners so the server can bind the ports.
func (p *portPicker) close() error {
	var errs []error
	for _, ln := range p.listeners {
		errs = append(errs, ln.Close())
	}
	p.listeners = nil
	return errors.Join(errs...)
}
