// Package layercheck holds the test that shows the layering rules of .golangci.yml (depguard)
// bite: a throw-away module with the repository's go.mod and lint configuration, and one file per
// rule that imports across a layer, must fail golangci-lint with exactly those rules; the same
// imports where they are allowed must pass. Nothing here is linked into the service.
package layercheck
