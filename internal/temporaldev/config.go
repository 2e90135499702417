package temporaldev

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
)

const (
	clusterName  = "active"
	coreStore    = "postgres-default"
	visStore     = "postgres-visibility"
	archDisabled = "disabled"
	// internalFrontendService is the frontend the server's own services use when the public
	// one authorizes callers: it trusts every caller as the system, so it listens on the
	// internal address only, like history and matching, which trust their callers too.
	internalFrontendService = "internal-frontend"
)

// endpoints are the addresses chosen for one server run.
type endpoints struct {
	// frontendBind is the IP the frontend listens on (may be unspecified).
	frontendBind string
	// internalIP is where the other services listen and what membership
	// advertises; it must be reachable from this process.
	internalIP string
	// frontendDial is the host:port clients (and the server's own worker
	// service) use to reach the frontend.
	frontendDial string
	frontendPort int
	services     map[string]config.Service
}

// pickEndpoints resolves FrontendAddr and picks free ports for everything
// else. Internal services stay on loopback unless the frontend is bound to a
// specific IP, because membership advertises one address for all of them.
// internalFrontend adds the internal frontend, through which the server's own
// worker service reaches the others when the public frontend demands tokens.
func pickEndpoints(frontendAddr string, internalFrontend bool) (endpoints, error) {
	host, portStr, err := net.SplitHostPort(frontendAddr)
	if err != nil {
		return endpoints{}, fmt.Errorf("frontend addr %q: %w", frontendAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return endpoints{}, fmt.Errorf("frontend addr %q: invalid port", frontendAddr)
	}
	switch host {
	case "":
		host = "0.0.0.0"
	case "localhost":
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() == nil {
		return endpoints{}, fmt.Errorf("frontend addr %q: host must be an IPv4 address", frontendAddr)
	}
	ep := endpoints{frontendBind: host, internalIP: host}
	if ip.IsUnspecified() {
		ep.internalIP = "127.0.0.1"
	}

	// Both pickers hold their probes until all ports are chosen, so the
	// frontend port cannot be handed out again for an internal service.
	frontendPicker, picker := newPortPicker(ep.frontendBind), newPortPicker(ep.internalIP)
	defer func() { _ = frontendPicker.close(); _ = picker.close() }() // probes hold no data

	if port == 0 {
		if port, err = frontendPicker.next(); err != nil {
			return endpoints{}, err
		}
	} else if err := checkPortFree(ep.frontendBind, port); err != nil {
		// The server treats a failed bind as fatal deep inside its startup,
		// so catching the common "already running" case here gives a clear
		// error instead of a crash.
		return endpoints{}, err
	}
	ep.frontendPort = port
	ep.frontendDial = net.JoinHostPort(ep.internalIP, strconv.Itoa(port))

	ep.services = map[string]config.Service{}
	names := []string{"frontend", "history", "matching", "worker"}
	if internalFrontend {
		names = append(names, internalFrontendService)
	}
	for _, name := range names {
		membership, err := picker.next()
		if err != nil {
			return endpoints{}, err
		}
		rpc := config.RPC{MembershipPort: membership, BindOnIP: ep.internalIP}
		if name == "frontend" {
			rpc.GRPCPort = port
			rpc.BindOnIP = ep.frontendBind
		} else if rpc.GRPCPort, err = picker.next(); err != nil {
			return endpoints{}, err
		}
		ep.services[name] = config.Service{RPC: rpc}
	}
	return ep, nil
}

func checkPortFree(ip string, port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("frontend port %d on %s is not free (is another Temporal server running?): %w", port, ip, err)
	}
	return ln.Close()
}

// serverConfig mirrors the server's temporaltest lite server, with PostgreSQL
// instead of SQLite and without metrics or pprof listeners (nothing scrapes
// them in development, and fixed ports would collide between test runs).
func serverConfig(o Options, t pgTarget, ep endpoints) *config.Config {
	var c config.Config
	c.Global.Membership = config.Membership{
		MaxJoinDuration:  30 * time.Second,
		BroadcastAddress: ep.internalIP,
	}
	c.Persistence = config.Persistence{
		DefaultStore:     coreStore,
		VisibilityStore:  visStore,
		NumHistoryShards: o.NumHistoryShards,
		DataStores: map[string]config.DataStore{
			coreStore: {SQL: t.shared(o.DatabaseName, o.MaxConns, o.ApplicationName)},
			visStore:  {SQL: t.shared(o.VisibilityDatabaseName, o.VisibilityMaxConns, o.ApplicationName+"-visibility")},
		},
	}
	c.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             ep.frontendDial,
			},
		},
	}
	c.DCRedirectionPolicy = config.DCRedirectionPolicy{Policy: "noop"}
	c.Services = ep.services
	c.Archival.History.State = archDisabled
	c.Archival.Visibility.State = archDisabled
	c.NamespaceDefaults.Archival.History.State = archDisabled
	c.NamespaceDefaults.Archival.Visibility.State = archDisabled
	// The server's own worker service dials the frontend through this; with an internal
	// frontend, the server finds that one by membership (and refuses a public client).
	if _, ok := ep.services[internalFrontendService]; !ok {
		c.PublicClient = config.PublicClient{HostPort: ep.frontendDial}
	}
	return &c
}
