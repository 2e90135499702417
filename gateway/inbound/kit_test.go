package inbound

import "github.com/nhp/interop/gateway/internal/gatewaytest"

// The shared MLLP test kit (gateway/internal/gatewaytest, which the admin API's connector tests
// use too) under the names this package's tests use.
var (
	freePort        = gatewaytest.FreePort
	hostPort        = gatewaytest.HostPort
	requireRefused  = gatewaytest.RequireRefused
	requireAccepts  = gatewaytest.RequireAccepts
	insertConnector = gatewaytest.InsertConnector
	fixture         = gatewaytest.Fixture
	withMSH         = gatewaytest.WithMSH
	message         = gatewaytest.Message
	dial            = gatewaytest.Dial
	sendOn          = gatewaytest.SendOn
	count           = gatewaytest.Count
)

type connectorSpec = gatewaytest.ConnectorSpec
