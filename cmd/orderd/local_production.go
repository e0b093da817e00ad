//go:build production

package main

import (
	"context"
	"fmt"

	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/metrics"
	"github.com/ordo-shop/ordo/internal/psp"
)

// The production build links none of the local servers. It refuses, at
// start, a configuration that would need one (checkBuild); the functions
// below are never reached after that, and fail if they were.

// checkBuild refuses a configuration that needs a local server, naming
// the variables to set.
func checkBuild(cfg config.Config) error {
	if need := localServers(cfg); len(need) > 0 {
		return refusal(need)
	}
	return nil
}

// localSim stands for the payment simulator, which this build leaves out.
type localSim struct{}

func (*localSim) SetWebhookURL(string) {}
func (*localSim) BaseURL() string      { return "" }
func (*localSim) Start(string) (string, error) {
	return "", fmt.Errorf("the payment simulator: %w; set ORDO_PSP_URL", errNotInThisBuild)
}
func (*localSim) Close() error { return nil }

func (a *app) startPrivatePostgres(context.Context) (string, error) {
	return "", fmt.Errorf("the private PostgreSQL: %w; set ORDO_POSTGRES_URL", errNotInThisBuild)
}

type localSearch struct{}

func (a *app) localSearch() *localSearch { return &localSearch{} }

func (*localSearch) start(context.Context) (string, error) {
	return "", fmt.Errorf("the local Elasticsearch: %w; set ORDO_ELASTICSEARCH_URL", errNotInThisBuild)
}

func (*localSearch) keep(context.Context, string, func(string)) {}

func (a *app) newSimulator([]byte, psp.Faults) (*localSim, string, error) {
	return nil, "", fmt.Errorf("the payment simulator: %w; set ORDO_PSP_URL", errNotInThisBuild)
}

// simMetrics has no simulator to report on.
func (a *app) simMetrics(*metrics.Metrics) error { return nil }
