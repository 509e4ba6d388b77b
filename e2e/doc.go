// Package e2e drives the built surveyd and fieldapp binaries the way people
// and other tools do: through their command lines, with real processes that
// can be killed at any moment.
package e2e
