// Package kwok pins the kwok version causeway's test environment builds
// (`go build sigs.k8s.io/kwok/cmd/kwok` from this module).
package kwok
