module causeway.dev/hack/gateway-api

go 1.26.0

// Pins the Gateway API release whose CRDs (config/crd/experimental) the test environment
// installs; nothing is built from it.
require sigs.k8s.io/gateway-api v1.6.3
