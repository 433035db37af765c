// Package fuzz holds the native Go fuzz targets of dyad, one per parser of
// untrusted bytes, each naming the attack surface it covers. Run them with
// `go test -fuzz=FuzzName ./fuzz/`; their seed corpora live in
// testdata/fuzz/FuzzName/.
package fuzz
