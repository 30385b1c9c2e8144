// Package helm pins the helm version causeway's chart tests use
// (`go build helm.sh/helm/v3/cmd/helm` from this module).
package helm
