//go:build plantedbugs

package api

// AnyContentType is the planted bug publish-any-content-type
// (service/planted): /publish takes any Content-Type, or none.
func AnyContentType(string) bool { return true }
