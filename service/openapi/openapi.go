// Package openapi embeds the OpenAPI 3.0.3 description of the ChronicleWeaver
// aggregator HTTP API (served at /openapi.json) and a self-contained HTML page
// that renders it (served at /docs).
//
// The document is hand-written in openapi.json; docs.html has no external
// resources (no CDN, fonts or scripts) and renders the document with a small
// inline script, so it works offline and behind strict egress rules.
package openapi

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
)

//go:embed openapi.json
var spec []byte

//go:embed docs.html
var docs []byte

// paths holds the sorted path keys of the embedded document.
var paths = mustPaths(spec)

func mustPaths(doc []byte) []string {
	var d struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		panic(fmt.Sprintf("openapi: embedded openapi.json is not valid JSON: %v", err))
	}
	out := make([]string, 0, len(d.Paths))
	for p := range d.Paths {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Spec returns the OpenAPI 3.0.3 document as JSON (serve it as
// application/json). Each call returns a fresh copy that the caller may keep
// or modify.
func Spec() []byte { return bytes.Clone(spec) }

// Docs returns the self-contained HTML documentation page (serve it as
// text/html; charset=utf-8). It loads the document from /openapi.json. Each
// call returns a fresh copy.
func Docs() []byte { return bytes.Clone(docs) }

// Paths returns the paths documented in Spec, sorted.
func Paths() []string { return slices.Clone(paths) }
