//go:build libfuzzer

package sandbox

import "errors"

// installFilter fails in a libFuzzer build (go-118-fuzz-build sets the
// libfuzzer tag): the fuzz targets link with the fuzzing engine alone,
// without libseccomp, which OSS-Fuzz's link line does not name. The
// error is not ErrSeccompUnsupported, so Confine fails even where the
// operator allowed running without seccomp: such a binary never runs a
// daemon unconfined.
func installFilter(SyscallPolicy) error {
	return errors.New("seccomp: this is a libFuzzer build, which has no seccomp filters")
}
