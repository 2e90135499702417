package temporaldev

import (
	"fmt"
	"sync/atomic"
	"time"

	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
)

// dynamicConfigPollInterval is how often DynamicConfigFile is re-read; the
// server rejects anything below five seconds.
const dynamicConfigPollInterval = 10 * time.Second

// layeredConfig answers dynamic config lookups from the first layer that has
// the key: explicit Options.DynamicConfig, then the file, then our defaults.
// It deliberately does not implement dynamicconfig.NotifyingClient, so the
// server polls it and file changes still propagate.
type layeredConfig struct {
	layers []dynamicconfig.Client
}

func (c layeredConfig) GetValue(key dynamicconfig.Key) []dynamicconfig.ConstrainedValue {
	for _, l := range c.layers {
		if v := l.GetValue(key); len(v) > 0 {
			return v
		}
	}
	return nil
}

// forceSACacheRefresh makes the server read search attributes from the
// database on every use. Starting workflows right after Start needs that: a
// service whose cache was loaded before our search attributes were
// registered rejects them until the cache expires. For good it would cost a
// database query under a global lock on every start and every upsert
// (bench/system: tune sa-cache), so it stays on only until every cache has
// expired once after the registration.
const forceSACacheRefresh = "system.forceSearchAttributesCacheRefreshOnRead"

// saCacheRefresh is the server's search attribute cache lifetime
// (common/searchattribute cacheRefreshInterval).
const saCacheRefresh = 60 * time.Second

// registeringLayer answers forceSACacheRefresh with true while registering
// is set, and nothing otherwise.
type registeringLayer struct{ registering *atomic.Bool }

func (l registeringLayer) GetValue(key dynamicconfig.Key) []dynamicconfig.ConstrainedValue {
	if l.registering != nil && l.registering.Load() && key == dynamicconfig.MakeKey(forceSACacheRefresh) {
		return []dynamicconfig.ConstrainedValue{{Value: true}}
	}
	return nil
}

// newDynamicConfig builds the server's dynamic config client. done stops the
// file poller and must be closed when the server stops. registering turns
// forceSACacheRefresh on while it is set.
func newDynamicConfig(o Options, logger log.Logger, done <-chan any, registering *atomic.Bool) (dynamicconfig.Client, error) {
	var layers []dynamicconfig.Client
	layers = append(layers, staticConfig(o.DynamicConfig))
	if o.DynamicConfigFile != "" {
		fc, err := dynamicconfig.NewFileBasedClient(&dynamicconfig.FileBasedClientConfig{
			Filepath:     o.DynamicConfigFile,
			PollInterval: dynamicConfigPollInterval,
		}, logger, done)
		if err != nil {
			return nil, fmt.Errorf("load dynamic config file: %w", err)
		}
		layers = append(layers, fc)
	}
	layers = append(layers, registeringLayer{registering}, staticConfig(DefaultDynamicConfig()))
	return layeredConfig{layers: layers}, nil
}

func staticConfig(values map[string]any) dynamicconfig.StaticClient {
	c := make(dynamicconfig.StaticClient, len(values))
	for k, v := range values {
		c[dynamicconfig.MakeKey(k)] = v
	}
	return c
}
